"""Appeals end to end on a real server (SQLite and PostgreSQL): a suspended user appeals with
`vigil chat appeal`, a reviewer overturns it in the console over HTTP citing a policy, the user's
`vigil chat receive` shows the verified notice, the account works again, and a second appeal is refused."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from cli_runner import Ran, vigil_in_thread
from console_client import PASSWORD, Console
from helpers import unique
from sqlalchemy import func, select

from vigil.console.auth import Role, create_reviewer
from vigil.server.context import ServerContext
from vigil.server.db.accounts import AccountActionRow
from vigil.server.db.appeals import AppealRepository, AppealRow
from vigil.server.db.labels import AccountLabelRow
from vigil.server.offline import offline_context
from vigil.server.services import policies
from vigil.server.services.audit import entries_for
from vigil.server.services.labels import add_label
from vigil.server.services.review_metrics import review_metrics
from vigil.server.settings import Settings


class Chat:
    """`vigil chat --profile NAME ...` for one user."""

    def __init__(self, server_url: str, home: Path, name: str) -> None:
        self.url, self.name = server_url, unique(name)
        self.env = {"VIGIL_HOME": str(home), "VIGIL_PASSPHRASE": "appeal passphrase"}

    async def __call__(self, *args: str) -> Ran:
        return await vigil_in_thread("chat", "--profile", self.name, *args, env=self.env)

    async def ok(self, *args: str) -> str:
        ran = await self(*args)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        return ran.stdout


def _offline(server) -> ServerContext:  # type: ignore[no-untyped-def]
    return offline_context(Settings(data_dir=server.data_dir, database_url=server.database_url))  # type: ignore[return-value]


async def test_a_suspended_user_appeals_and_a_reviewer_overturns(server, tmp_path: Path) -> None:
    home = tmp_path / "home"
    mallory, bob = Chat(server.url, home, "mallory"), Chat(server.url, home, "bob")
    for user in (mallory, bob):
        await user.ok("register", user.name, "--server", server.url, "--birth-date", "1990-02-03")

    nothing = await mallory("appeal", "--reason", "I did nothing")
    assert nothing.returncode == 1 and "no action was taken" in nothing.stdout, nothing.stdout

    await mallory.ok("send", bob.name, "you will regret this")
    await bob.ok("receive")
    reported = await bob.ok("report", mallory.name, "--reason", "harassment", "--context", "0")
    case_id = int(re.search(r"case (\d+)", reported)[1])  # type: ignore[index]

    reviewer = unique("rita")
    async with _offline(server) as ctx:
        await create_reviewer(ctx, reviewer, PASSWORD, Role.REVIEWER, "test")
        lead_name = unique("lena")
        await create_reviewer(ctx, lead_name, PASSWORD, Role.LEAD, "test")
        policy = await policies.add_policy(ctx, "test", unique("har").upper()[:12], "Harassment")
    console = Console(server.url)
    try:
        await console.sign_in(reviewer)
        suspended = await console.post(
            f"/cases/{case_id}/action", action="suspend", policy=str(policy.id), confirm="yes"
        )
        assert suspended.status_code in (302, 303), suspended.text
        refused = await mallory("send", bob.name, "still here")
        assert refused.returncode == 1 and "suspended" in refused.stdout, refused.stdout

        # The suspended account reads why (a verified notice) and appeals; nothing else answers it.
        told = await mallory.ok("notices")
        assert "(verified, action_suspend) about your account" in told, told
        assert "your account is suspended" in told, told
        appealed = await mallory.ok("appeal", "--reason", "It was a joke between friends")
        assert "against the suspend decision" in appealed, appealed
        again = await mallory("appeal", "--reason", "please")
        assert again.returncode == 1 and "already appealed" in again.stdout, again.stdout

        queue = await console.request("GET", "/queue?queue=appeals")
        found = re.search(r'href="[^"]*/cases/(\d+)"', queue.text)
        assert queue.status_code == 200 and found is not None, queue.text
        appeal_case = int(found[1])
        assert appeal_case != case_id
        page = await console.request("GET", f"/cases/{appeal_case}")
        assert "It was a joke between friends" in page.text and "Overturn" in page.text
        no_policy = await console.post(f"/cases/{appeal_case}/appeal", outcome="overturn")
        assert no_policy.status_code == 400 and "policy" in no_policy.text
        overturned = await console.post(
            f"/cases/{appeal_case}/appeal", outcome="overturn", policy=str(policy.id)
        )
        assert overturned.status_code in (302, 303), overturned.text
        twice = await console.post(f"/cases/{appeal_case}/appeal", outcome="uphold", policy=str(policy.id))
        assert twice.status_code == 409

        assert (await console.request("GET", "/metrics.csv")).status_code == 403  # leads only
    finally:
        await console.http.aclose()

    # The lead's metrics show the overturn, matching what the database holds.
    lead = Console(server.url)
    try:
        await lead.sign_in(lead_name)
        async with _offline(server) as ctx:
            figures = await review_metrics(ctx)
        assert figures.appeals_overturned >= 1 and figures.overturn_rate is not None
        exported = (await lead.request("GET", "/metrics.csv")).text
        row = f"appeal_overturns,appeals,{figures.appeals_overturned},{figures.appeals_decided},,,"
        assert row + f"{figures.overturn_rate:.4f}" in exported, exported
        page = (await lead.request("GET", "/metrics")).text
        assert f'<span class="overturned">{figures.appeals_overturned}</span>' in page
    finally:
        await lead.http.aclose()

    received = await mallory.ok("receive")
    assert "safety notice" in received and "(verified, appeal_overturned)" in received, received
    assert "Your appeal was accepted" in received
    await mallory.ok("send", bob.name, "sorry about that")
    assert "sorry about that" in await bob.ok("receive")
    second = await mallory("appeal", "--reason", "one more time")
    assert second.returncode == 1 and "already appealed" in second.stdout, second.stdout

    async with _offline(server) as ctx, ctx.sessions() as session:
        appeal = await AppealRepository(session).for_case(appeal_case)
        assert appeal is not None and appeal.state == "overturned" and appeal.policy_id == policy.id
        trail = [e.action for e in await entries_for(session, f"case:{appeal_case}")]
        assert "appeal.filed" in trail and "appeal.overturned" in trail
        mallory_id = appeal.user_id

    # An actioned, appealed and labelled account can still be deleted: its appeal, action and labels go
    # with it (the appeal points at the action, so both must go together on PostgreSQL's foreign keys).
    async with _offline(server) as ctx:
        await add_label(ctx, "test", None, case_id, "repeat-harasser", None)
    deleted = await mallory.ok("delete-account", "--yes")
    assert "removed from this computer" in deleted, deleted
    async with _offline(server) as ctx, ctx.sessions() as session:
        for model in (AppealRow, AccountLabelRow, AccountActionRow):
            left = await session.scalar(
                select(func.count()).select_from(model).where(model.user_id == mallory_id)
            )
            assert left == 0, model.__tablename__


async def test_the_appeal_api_names_the_problem(server, tmp_path: Path) -> None:
    from helpers import register

    alice = await register(server.url, tmp_path, "alice")
    credential = alice.transport._credential
    async with httpx.AsyncClient(base_url=server.url) as http:
        headers = {"Authorization": f"Bearer {credential}"}
        oversized = await http.post("/v1/appeals", json={"reason": "x" * 1001}, headers=headers)
        assert oversized.status_code == 422 and "reason" in oversized.text
        empty = await http.post("/v1/appeals", json={"reason": ""}, headers=headers)
        assert empty.status_code == 422 and "reason" in empty.text
        extra = await http.post("/v1/appeals", json={"reason": "hi", "case": 1}, headers=headers)
        assert extra.status_code == 422
        nothing = await http.post("/v1/appeals", json={"reason": "hi"}, headers=headers)
        assert nothing.status_code == 404 and "no action" in nothing.json()["detail"]
        anonymous = await http.post("/v1/appeals", json={"reason": "hi"})
        assert anonymous.status_code == 401

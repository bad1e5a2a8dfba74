"""The console as a team's daily tool, in Debian's Chromium against one real server for the module:
named queues and "claim next" (two reviewers claiming at once never get the same case; others see it
claimed; release), per-queue access.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_runner import vigil_in_thread
from helpers import register
from live_server import ServerProcess, start_server
from safety_helpers import server_context
from sqlalchemy import select

from vigil.console.auth import Role, create_reviewer, list_reviewers, set_queues
from vigil.protocol.ids import UserId
from vigil.protocol.reports import ReportReason
from vigil.safety.behavior.assessment import Reason, RiskAssessment
from vigil.safety.behavior.policy import Decision, ProtectiveAction
from vigil.safety.routing import QueueName
from vigil.server.db.accounts import UserRepository
from vigil.server.db.audit import AuditRow
from vigil.server.services.policies import add_policy
from vigil.server.services.risk_history import record_assessments

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
ADMIN_PASSWORD = "admin password for tests"
PASSWORD = "reviewer password for tests"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install -y chromium)"
)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server, _database = start_server("sqlite", tmp_path_factory.mktemp("console-ops"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield chromium
        await chromium.close()


async def _sign_in(browser: Any, url: str, name: str, password: str) -> Any:
    page = await (await browser.new_context(viewport={"width": 1400, "height": 1000})).new_page()
    await page.goto(f"{url}/console/login")
    await page.get_by_label("Name").fill(name)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r".*/console/queue$"))
    return page


async def _claim(page: Any, url: str, queue_label: str) -> int | None:
    await page.get_by_role("button", name=f"Claim next: {queue_label}").click()
    await page.wait_for_load_state()
    found = re.search(r"/cases/(\d+)$", page.url)
    return int(found.group(1)) if found else None


async def test_two_reviewers_claiming_at_once_never_get_the_same_case(
    live: ServerProcess, browser: Any, tmp_path: Path
) -> None:
    env = {
        "VIGIL_DATA_DIR": str(live.data_dir),
        "VIGIL_DATABASE_URL": live.database_url,
        "VIGIL_CONSOLE_PASSWORD": ADMIN_PASSWORD,
    }
    created = await vigil_in_thread("console", "create-admin", "root", env=env)
    assert created.returncode == 0, created.stdout + created.stderr
    async with server_context(live.data_dir, live.database_url) as ctx:
        await create_reviewer(ctx, "ana", PASSWORD, Role.REVIEWER, "test")
        await create_reviewer(ctx, "ben", PASSWORD, Role.REVIEWER, "test")
        mia = await create_reviewer(ctx, "mia", PASSWORD, Role.REVIEWER, "test")
        admin = next(r for r, _d, _l in await list_reviewers(ctx) if r.username == "root")
        await set_queues(ctx, admin, mia.id, ["minors"])

    reporter = await register(live.url, tmp_path, "reporter")
    subjects = [await register(live.url, tmp_path, f"spammer{n}") for n in range(5)]
    case_ids = {
        (await reporter.report_account(s.username, ReportReason.HARASSMENT, block=False)).case_id
        for s in subjects
    }
    assert len(case_ids) == 5

    ana = await _sign_in(browser, live.url, "ana", PASSWORD)
    ben = await _sign_in(browser, live.url, "ben", PASSWORD)
    await ana.goto(f"{live.url}/console/queue?queue=general")
    assert "(5)" in await ana.locator("nav.queues").inner_text()
    claimed: list[int | None] = []
    for _ in range(3):
        await asyncio.gather(*(p.goto(f"{live.url}/console/queue?queue=general") for p in (ana, ben)))
        claimed += await asyncio.gather(*(_claim(p, live.url, "Everything else") for p in (ana, ben)))
    won = [c for c in claimed if c is not None]
    assert len(won) == 5 and set(won) == case_ids, claimed  # 6 claims, 5 cases: one found nothing
    assert claimed.count(None) == 1
    assert (
        "Nothing left to claim"
        in await (ana if claimed.index(None) % 2 == 0 else ben).locator("main").inner_text()
    )

    # Others see who holds a case, and cannot act on it; the holder releases it back to the queue.
    ana_case = claimed[0]
    await ben.goto(f"{live.url}/console/cases/{ana_case}")
    assert "claimed by ana" in await ben.locator(".claim-status").inner_text()
    refused = await ben.request.post(
        f"{live.url}/console/cases/{ana_case}/action",
        form={
            "action": "dismiss",
            "csrf": await ben.locator("input[name=csrf]").first.get_attribute("value"),
        },
    )
    assert refused.status == 409
    await ana.goto(f"{live.url}/console/cases/{ana_case}")
    await ana.get_by_role("button", name="Release to the queue").click()
    await ana.wait_for_load_state()
    assert "unclaimed" in await ana.locator(".claim-status").inner_text()
    assert "case.released" in await ana.locator("ol.audit").inner_text()

    # Per-queue access: mia works only minors' reports.
    mia_page = await _sign_in(browser, live.url, "mia", PASSWORD)
    assert await mia_page.get_by_role("button", name="Claim next: Everything else").count() == 0
    response = await mia_page.goto(f"{live.url}/console/cases/{ana_case}")
    assert response is not None and response.status == 403
    response = await mia_page.goto(f"{live.url}/console/queue?queue=general")
    assert response is not None and response.status == 403


async def test_keyboard_first_decisions_cite_a_policy_confirm_suspend_and_move_on(
    live: ServerProcess, browser: Any, tmp_path: Path
) -> None:
    async with server_context(live.data_dir, live.database_url) as ctx:
        await create_reviewer(ctx, "ada", ADMIN_PASSWORD, Role.ADMIN, "test")
        await create_reviewer(ctx, "kim", PASSWORD, Role.REVIEWER, "test")
    admin = await _sign_in(browser, live.url, "ada", ADMIN_PASSWORD)
    await admin.goto(f"{live.url}/console/admin/policies")
    await admin.get_by_label("Code").fill("HAR-1")
    await admin.get_by_label("Title").fill("Harassment and threats")
    await admin.get_by_role("button", name="Add policy").click()
    await admin.wait_for_load_state()
    assert "Harassment and threats" in await admin.locator("table.policies").inner_text()

    child = await register(
        live.url, tmp_path, "child", birth_date=dt.date.today() - dt.timedelta(days=14 * 366)
    )
    subjects = [await register(live.url, tmp_path, f"bully{n}") for n in range(3)]
    for s in subjects:
        await child.report_account(s.username, ReportReason.HARASSMENT, block=False)

    kim = await _sign_in(browser, live.url, "kim", PASSWORD)
    await kim.goto(f"{live.url}/console/queue?queue=minors")
    assert "(3)" in await kim.locator(".queue-tab[data-queue=minors]").inner_text()
    await kim.keyboard.press("n")  # claim next
    await kim.wait_for_url(re.compile(r".*/console/cases/\d+$"))
    first = kim.url
    csrf = await kim.locator("input[name=csrf]").first.get_attribute("value")
    refused = await kim.request.post(f"{first}/action", form={"action": "dismiss", "csrf": csrf or ""})
    assert refused.status == 400 and "policy" in await refused.text()
    await kim.keyboard.press("d")  # no policy chosen: the form does not submit
    assert kim.url == first and "unclaimed" not in await kim.locator(".claim-status").inner_text()

    await kim.keyboard.press("p")
    await kim.keyboard.press("ArrowDown")
    assert (
        await kim.locator("#policy").evaluate("s => s.selectedOptions[0].text")
        == "HAR-1: Harassment and threats"
    )
    await kim.keyboard.press("d")  # dismiss, then the next case in the queue
    await kim.wait_for_url(lambda url: url != first and re.search(r"/cases/\d+$", url) is not None)
    second = kim.url
    await kim.keyboard.press("p")
    await kim.keyboard.press("ArrowDown")
    await kim.keyboard.press("s")  # suspend asks first
    await kim.wait_for_url(re.compile(r".*/action$"))
    assert "Confirm suspend" in await kim.locator("main").inner_text()
    await kim.keyboard.press("y")
    await kim.wait_for_url(
        lambda url: url not in (first, second) and re.search(r"/cases/\d+$", url) is not None
    )
    await kim.keyboard.press("p")
    await kim.keyboard.press("ArrowDown")
    await kim.keyboard.press("w")
    await kim.wait_for_url(re.compile(r".*/console/queue\?queue=minors&empty=1$"))

    await kim.goto(first)
    assert "Decided dismissed" in await kim.locator(".decision-summary").inner_text()
    await kim.goto(second)
    summary = await kim.locator(".decision-summary").inner_text()
    assert "Decided actioned" in summary and "HAR-1" in summary and "suspend" in summary
    assert await kim.locator(".standing-suspended").inner_text() == "suspended"

    # The metrics page shows what happened: kim's three decisions, the minors' queue all decided.
    await admin.goto(f"{live.url}/console/metrics")
    row = admin.locator("table.metrics-reviewers tr", has_text="kim")
    assert await row.locator("td.decisions").inner_text() == "3"
    minors = admin.locator("table.metrics-queues tr[data-queue=minors]")
    assert (
        await minors.locator("td.opened").inner_text(),
        await minors.locator("td.decided").inner_text(),
    ) == (
        "3",
        "3",
    )
    assert await admin.locator("svg.chart polyline").count() == len(QueueName)
    exported = await admin.request.get(f"{live.url}/console/metrics.csv")
    assert exported.status == 200 and "reviewer_decisions,kim,,3,," in await exported.text()
    assert "queue,minors,3,3," in await exported.text()
    forbidden = await kim.request.get(f"{live.url}/console/metrics")
    assert forbidden.status == 403  # leads and admins only

    # Investigation: the reporter's reports made, a subject's reports received and its suspension.
    await kim.goto(f"{live.url}/console/accounts?username={child.username}")
    assert await kim.locator("ul.reports-made li").count() == 3
    await kim.goto(f"{live.url}/console/accounts?username={subjects[0].username}")
    assert child.username in await kim.locator("ul.reports-received").inner_text()
    assert await kim.locator("ul.account-cases li").count() == 1
    missing = await kim.goto(f"{live.url}/console/accounts?username=nobody_here")
    assert missing is not None and missing.status == 404


async def test_bulk_dismissal_of_duplicate_reports_cites_a_policy_and_is_audited_per_report(
    live: ServerProcess, browser: Any, tmp_path: Path
) -> None:
    async with server_context(live.data_dir, live.database_url) as ctx:
        await create_reviewer(ctx, "dee", PASSWORD, Role.REVIEWER, "test")
        await add_policy(ctx, "test", "DUP-1", "Duplicate or unfounded report")
    subject = await register(live.url, tmp_path, "brigaded")
    reporters = [await register(live.url, tmp_path, f"piler{n}") for n in range(3)]
    case_ids = {
        (await r.report_account(subject.username, ReportReason.SPAM, block=False)).case_id for r in reporters
    }
    witness = await register(live.url, tmp_path, "witness")
    await subject.send_text(witness.username, "a real threat")
    [event] = await witness.fetch()
    case_ids.add((await witness.report(event, ReportReason.HARASSMENT)).case_id)
    [case_id] = case_ids  # four reports, one open case about the account

    dee = await _sign_in(browser, live.url, "dee", PASSWORD)
    await dee.goto(f"{live.url}/console/cases/{case_id}")
    articles = dee.locator("article.report")
    assert await articles.count() == 4
    account_reports = [
        int(await a.get_attribute("data-report") or 0)
        for a in await articles.all()
        if "a real threat" not in await a.inner_text()
    ]
    assert len(account_reports) == 3

    # Without a policy the form does not submit; the server refuses it too.
    for report in account_reports:
        await dee.get_by_label(f"Select report {report} as a duplicate").check()
    await dee.get_by_role("button", name="Dismiss selected duplicate reports").click()
    assert await dee.locator("article.report .dismissed-duplicate").count() == 0
    csrf = await dee.locator("input[name=csrf]").first.get_attribute("value") or ""
    refused = await dee.request.post(
        f"{live.url}/console/cases/{case_id}/reports/dismiss",
        form={"csrf": csrf, "report": str(account_reports[0])},
    )
    assert refused.status == 400 and "policy" in await refused.text()

    await dee.locator("#dismiss-policy").select_option(label="DUP-1: Duplicate or unfounded report")
    await dee.get_by_role("button", name="Dismiss selected duplicate reports").click()
    await dee.wait_for_load_state()
    assert await dee.locator("article.report .dismissed-duplicate").count() == 3
    threat = dee.locator("article.report", has_text="a real threat")
    assert await threat.locator(".dismissed-duplicate").count() == 0
    state = (await dee.locator(".case-head .state").inner_text()).lower()
    assert state in ("open", "in review")  # the case goes on with the report that stands
    assert (await dee.locator("ol.audit").inner_text()).count("report.dismissed") == 3

    async with server_context(live.data_dir, live.database_url) as ctx, ctx.sessions() as session:
        rows = (
            await session.scalars(
                select(AuditRow).where(AuditRow.action == "report.dismissed").order_by(AuditRow.id)
            )
        ).all()
        assert sorted(json.loads(r.details)["report"] for r in rows) == sorted(account_reports)
        assert {json.loads(r.details)["policy"] for r in rows} == {"DUP-1"}
        assert {r.actor for r in rows} == {"reviewer:dee"}


async def test_account_lookup_shows_risk_over_time_and_contact_graph_neighbours(
    live: ServerProcess, browser: Any, tmp_path: Path
) -> None:
    suspect = await register(live.url, tmp_path, "suspect")
    friend = await register(live.url, tmp_path, "friend")
    teen = await register(
        live.url, tmp_path, "teenpal", birth_date=dt.date.today() - dt.timedelta(days=14 * 366)
    )
    for other in (friend, teen):  # accepted contact requests: the contact graph the server holds
        request = await suspect.request_contact(other.username)
        await other.accept_request(request.id)
    await register(live.url, tmp_path, "unlinked")
    async with server_context(live.data_dir, live.database_url) as ctx:
        await create_reviewer(ctx, "ivy", PASSWORD, Role.REVIEWER, "test")
        async with ctx.sessions() as session, session.begin():
            row = await UserRepository(session).by_username(suspect.username)
            assert row is not None
            for at, score, level, reason in (
                (
                    1_790_000_000_000,
                    0.55,
                    ProtectiveAction.SAFETY_NOTICE,
                    "messaged 3 minors it had no tie to",
                ),
                (1_790_090_000_000, 0.91, ProtectiveAction.OPEN_CASE, "messaged 8 minors it had no tie to"),
            ):
                assessment = RiskAssessment(
                    UserId("p"), at, score, (Reason("minors_contacted", 8.0, 2.0, reason),), "risk-v2"
                )
                decision = Decision(UserId("p"), level, frozenset({level}), (), assessment)
                assert await record_assessments(session, [decision], {"p": row.id}, at) == 1

    ivy = await _sign_in(browser, live.url, "ivy", PASSWORD)
    await ivy.goto(f"{live.url}/console/accounts")
    await ivy.get_by_label("Username").fill(suspect.username)
    await ivy.get_by_role("button", name="Look up (audited)").click()
    await ivy.wait_for_load_state()
    rows = ivy.locator("table.risk-history tbody tr")
    assert await rows.count() == 2  # the history, oldest first, not only the latest
    assert [await s.inner_text() for s in await ivy.locator("td.risk-score").all()] == ["0.55", "0.91"]
    assert "messaged 8 minors it had no tie to" in await rows.nth(1).inner_text()
    assert "open case" in await rows.nth(1).inner_text()
    contacts = ivy.locator("ul.contacts li")
    assert await contacts.count() == 2
    text = await ivy.locator("ul.contacts").inner_text()
    assert friend.username in text and teen.username in text and "unlinked" not in text
    assert "minor" in await contacts.filter(has_text=teen.username).inner_text()
    await contacts.filter(has_text=friend.username).get_by_role("link").click()  # follow the graph
    await ivy.wait_for_load_state()
    assert suspect.username in await ivy.locator("ul.contacts").inner_text()
    assert "Never scored" in await ivy.locator(".risk-none").inner_text()

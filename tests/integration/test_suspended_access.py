"""A suspended account reaches exactly three endpoints: reading the notices sent to it (the signed ones and
the safety team's) and appealing. Every other endpoint that authenticates a device refuses it with 403
`policy_violation`, found by walking the app's routes (a new authenticated route is covered without
editing this test). Once the suspension is overturned the account works everywhere again; upheld, it stays
suspended and can still read the outcome."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from helpers import register
from in_process import in_process_server

from vigil.console.auth import Role, create_reviewer
from vigil.errors import ConflictError, PolicyViolation
from vigil.protocol.reports import ReportReason
from vigil.server.api.deps import get_appealing_device, get_device
from vigil.server.api.stream import SUSPENDED_CLOSE
from vigil.server.context import ServerContext
from vigil.server.db.cases import QueueFilter
from vigil.server.services import cases, policies
from vigil.server.services.appeals import AppealOutcome, decide_appeal
from vigil.server.services.cases import CaseAction
from vigil.server.settings import Settings

READABLE_WHILE_SUSPENDED = {("GET", "/v1/notices"), ("GET", "/v1/safety/notices"), ("POST", "/v1/appeals")}


def _calls(dependant: Dependant) -> Iterator[object]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def _flat(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # an included router (FastAPI keeps it whole)
            yield from _flat(route.original_router.routes)


def _authenticated_routes(routes: list[Any]) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(routes that refuse a suspended account, routes that let it in), as (method, path)."""
    strict: set[tuple[str, str]] = set()
    lenient: set[tuple[str, str]] = set()
    for route in _flat(routes):
        calls = set(_calls(route.dependant))
        for method in route.methods:
            if get_appealing_device in calls:
                lenient.add((method, route.path))
            elif get_device in calls:
                strict.add((method, route.path))
    return strict, lenient


def _concrete(path: str) -> str:
    """A path template with each parameter filled in (auth is checked before the values are)."""
    parts = [("1" if p.startswith("{") else p) for p in path.split("/")]
    return "/".join(parts)


async def _stream_answer(app: Any, authorization: str) -> dict[str, Any]:
    """The first thing the app sends on a WebSocket connection to /v1/stream with this credential."""
    scope = {
        "type": "websocket",
        "path": "/v1/stream",
        "raw_path": b"/v1/stream",
        "query_string": b"",
        "headers": [(b"authorization", authorization.encode())],
        "scheme": "ws",
        "server": ("vigil.test", 80),
        "client": ("127.0.0.1", 1),
        "root_path": "",
        "subprotocols": [],
        "asgi": {"version": "3.0"},
    }
    sent: list[dict[str, Any]] = []
    connect = iter([{"type": "websocket.connect"}])

    async def receive() -> dict[str, Any]:
        return next(connect, {"type": "websocket.disconnect", "code": 1000})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]


async def test_a_suspended_account_reads_its_notices_and_appeals_and_nothing_else(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "server", database_url=f"sqlite+aiosqlite:///{tmp_path / 'server' / 'vigil.db'}"
    )
    async with in_process_server(settings) as server:
        ctx: ServerContext = server.app.state.context
        mallory = await register(server.url, tmp_path, "mallory")
        bob = await register(server.url, tmp_path, "bob")
        await mallory.send_text(bob.username, "you will regret this")
        [event] = await bob.fetch()
        report = await bob.report(event, ReportReason.HARASSMENT)
        policy = await policies.add_policy(ctx, "test", "HAR1", "Harassment")
        await cases.apply_action(
            ctx, "reviewer:t", None, report.case_id, CaseAction.SUSPEND, policy_id=policy.id
        )

        strict, lenient = _authenticated_routes(server.app.routes)
        assert lenient == READABLE_WHILE_SUSPENDED
        assert len(strict) > 20  # the walk found the API (messages, keys, groups, blobs, ...)
        auth = {"Authorization": f"Bearer {mallory.store.get_secret('credential')}"}
        async with httpx.AsyncClient(base_url=server.url, headers=auth) as http:
            for method, path in sorted(strict):
                refused = await http.request(method, _concrete(path), json={})
                assert refused.status_code == 403, (method, path, refused.status_code, refused.text)
                assert refused.json() == {
                    "error": "policy_violation",
                    "detail": "this account is suspended",
                }, (method, path)

            # The WebSocket stream is refused too, before it is accepted (driven at the ASGI level: the
            # in-process server has no socket).
            assert await _stream_answer(server.app, auth["Authorization"]) == {
                "type": "websocket.close",
                "code": SUSPENDED_CLOSE,
                "reason": "",
            }

            # The three it may use: why it was suspended (verified by its client), and the appeal.
            assert (await http.get("/v1/notices")).status_code == 200
            [notice] = await mallory.safety_notices()
            assert (notice.kind, notice.subject) == ("action_suspend", mallory.username)
            assert "suspended" in notice.text and "appeal" in notice.text
            accepted = await mallory.appeal("It was a joke between friends")
            assert accepted.action == "suspend"

            # Overturned: the outcome arrives as a notice, and the whole API answers again.
            [appeal_case] = await cases.queue(ctx, QueueFilter(queues=("appeals",)))
            reviewer = await create_reviewer(ctx, "rita", "a long reviewer password", Role.REVIEWER, "test")
            await decide_appeal(
                ctx, "reviewer:rita", reviewer.id, appeal_case.id, AppealOutcome.OVERTURN, policy.id
            )
            kinds = [n.kind for n in await mallory.safety_notices()]
            assert kinds == ["action_suspend", "appeal_overturned"]
            assert (await http.get("/v1/messages")).status_code == 200
        await mallory.send_text(bob.username, "sorry")
        assert [e.text for e in await bob.fetch()] == ["sorry"]
        await mallory.close()
        await bob.close()


async def test_an_upheld_suspension_is_readable_while_still_suspended(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "server", database_url=f"sqlite+aiosqlite:///{tmp_path / 'server' / 'vigil.db'}"
    )
    async with in_process_server(settings) as server:
        ctx: ServerContext = server.app.state.context
        mallory = await register(server.url, tmp_path, "mallory")
        bob = await register(server.url, tmp_path, "bob")
        await mallory.send_text(bob.username, "you will regret this")
        [event] = await bob.fetch()
        report = await bob.report(event, ReportReason.HARASSMENT)
        policy = await policies.add_policy(ctx, "test", "HAR1", "Harassment")
        await cases.apply_action(
            ctx, "reviewer:t", None, report.case_id, CaseAction.SUSPEND, policy_id=policy.id
        )
        await mallory.appeal("please look again")
        [appeal_case] = await cases.queue(ctx, QueueFilter(queues=("appeals",)))
        reviewer = await create_reviewer(ctx, "rita", "a long reviewer password", Role.REVIEWER, "test")
        await decide_appeal(
            ctx, "reviewer:rita", reviewer.id, appeal_case.id, AppealOutcome.UPHOLD, policy.id
        )

        # Still suspended, and told so in a notice it can read (and verify); the rest stays refused.
        upheld = (await mallory.safety_notices())[-1]
        assert (upheld.kind, upheld.subject) == ("appeal_upheld", mallory.username)
        assert "final" in upheld.text
        with pytest.raises(PolicyViolation, match=r"^this account is suspended$"):
            await mallory.fetch()
        with pytest.raises(PolicyViolation, match=r"^this account is suspended$"):
            await mallory.send_text(bob.username, "hello?")
        with pytest.raises(ConflictError, match="already appealed"):
            await mallory.appeal("and again")
        await mallory.close()
        await bob.close()

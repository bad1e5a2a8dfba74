"""The preservation-holds page on a simulated clock, through the console app in-process: leads and admins
see the hold; a lead's release is refused (and audited); an admin sees no "Release" button and is refused
until the hold's date, then releases it (audited) and the page says so; a reviewer cannot see the page."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from vigil.console.app import create_console_app
from vigil.console.auth import Role, create_reviewer, sign_in
from vigil.server.context import ServerContext
from vigil.server.db.accounts import UserRow
from vigil.server.db.audit import AuditRow
from vigil.server.db.cases import CaseRow
from vigil.server.services.preservation import PRESERVATION_DAYS, list_holds, place_hold
from vigil.server.settings import Settings

PASSWORD = "a password for the tests"
T0 = 1_800_000_000_000
DAY = 24 * 3600 * 1000


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


@pytest.fixture
async def ctx(tmp_path: Path) -> AsyncIterator[tuple[ServerContext, Clock]]:
    clock = Clock()
    async with ServerContext.open(Settings(data_dir=tmp_path), clock_ms=clock) as context:
        for name, role in (("ada", Role.ADMIN), ("lena", Role.LEAD), ("rita", Role.REVIEWER)):
            await create_reviewer(context, name, PASSWORD, role, "test")
        yield context, clock


async def _hold(ctx: ServerContext) -> int:
    async with ctx.sessions() as session, session.begin():
        user = UserRow(username="mallory", age_band="adult", created_at_ms=T0)
        session.add(user)
        await session.flush()
        case = CaseRow(
            subject_user_id=user.id,
            state="escalated",
            priority=100,
            top_reason="csam",
            created_at_ms=T0,
            updated_at_ms=T0,
        )
        session.add(case)
        await session.flush()
        hold = await place_hold(
            ctx,
            session,
            case_id=case.id,
            subject_user_id=user.id,
            filing_id=None,
            reason="CyberTipline report 1000001 finished (18 U.S.C. 2258A(h))",
            blob_ids=frozenset(),
            actor="reviewer:lena",
            now_ms=T0,
        )
        return hold.id


async def _console(ctx: ServerContext, name: str) -> tuple[httpx.AsyncClient, str]:
    """A client signed in as `name` (at the context's current time), and its CSRF token."""
    me = await sign_in(ctx, name, PASSWORD)
    app = create_console_app(ctx.settings, context=lambda: ctx)
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="https://console.test",
        cookies={"vigil_console": me.token},
    )
    return client, me.csrf


async def _audit_actions(ctx: ServerContext) -> list[tuple[str, str]]:
    async with ctx.sessions() as session:
        return [(r.actor, r.action) for r in await session.scalars(select(AuditRow).order_by(AuditRow.id))]


async def test_only_an_admin_releases_a_hold_and_only_after_its_date(
    ctx: tuple[ServerContext, Clock],
) -> None:
    context, clock = ctx
    hold_id = await _hold(context)

    lead, lead_csrf = await _console(context, "lena")
    async with lead:
        page = await lead.get("/holds")
        assert page.status_code == 200
        assert (
            "mallory" in page.text and "in force" in page.text and "CyberTipline report 1000001" in page.text
        )
        assert "Release" not in page.text
        refused = await lead.post(f"/holds/{hold_id}/release", data={"csrf": lead_csrf})
        assert refused.status_code == 403 and "only an admin" in refused.text
        missing_csrf = await lead.post(f"/holds/{hold_id}/release", data={})
        assert missing_csrf.status_code == 403 and "CSRF" in missing_csrf.text
    assert ("reviewer:lena", "preservation.release_refused") in await _audit_actions(context)

    reviewer, _csrf = await _console(context, "rita")
    async with reviewer:
        assert (await reviewer.get("/holds")).status_code == 403
        assert (await reviewer.get("/cybertip/reports")).status_code == 403

    admin, admin_csrf = await _console(context, "ada")
    async with admin:
        page = await admin.get("/holds")
        assert page.status_code == 200 and "Release" not in page.text  # not before its date
        early = await admin.post(f"/holds/{hold_id}/release", data={"csrf": admin_csrf})
        assert early.status_code == 409 and "in force until" in early.text
    assert all(h.in_force for h in await list_holds(context))

    clock.now = T0 + PRESERVATION_DAYS * DAY  # the hold's date; every session from before has expired
    admin, admin_csrf = await _console(context, "ada")
    async with admin:
        page = await admin.get("/holds")
        assert re.search(r"in force \(its date has passed\)", page.text)
        assert f'aria-label="Release hold {hold_id}"' in page.text
        released = await admin.post(f"/holds/{hold_id}/release", data={"csrf": admin_csrf})
        assert released.status_code == 303 and released.headers["location"] == "/holds"
        page = await admin.get("/holds")
        assert "released" in page.text and "by reviewer:ada" in page.text
        assert f'aria-label="Release hold {hold_id}"' not in page.text
        again = await admin.post(f"/holds/{hold_id}/release", data={"csrf": admin_csrf})
        assert again.status_code == 409 and "already released" in again.text
    (hold,) = await list_holds(context)
    assert not hold.in_force and hold.released_by == "reviewer:ada" and hold.released_at_ms == clock.now
    assert ("reviewer:ada", "preservation.hold_released") in await _audit_actions(context)

"""The case-creation seam (`open_or_join_case`) and the one place a report row is built
(`file_report`), on a migrated SQLite database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from vigil.protocol.ids import DeviceId, UserId
from vigil.protocol.reports import ReportReason
from vigil.protocol.wire import AgeBand
from vigil.server.context import ServerContext
from vigil.server.db.accounts import UserRepository, UserRow
from vigil.server.services.accounts import AuthenticatedDevice
from vigil.server.services.cases import file_report, open_or_join_case
from vigil.server.settings import Settings

T0 = 1_800_000_000_000
DAY_MS = 86_400_000


@pytest.fixture
async def ctx(tmp_path: Path) -> AsyncIterator[ServerContext]:
    async with ServerContext.open(Settings(data_dir=tmp_path, report_retention_days=30)) as ctx:
        yield ctx


async def _user(ctx: ServerContext, name: str) -> UserRow:
    async with ctx.sessions() as session, session.begin():
        return await UserRepository(session).add(UserRow(username=name, age_band="adult", created_at_ms=T0))


async def test_the_first_report_opens_a_case_and_later_ones_join_it(ctx: ServerContext) -> None:
    mallory = await _user(ctx, "mallory")
    async with ctx.sessions() as session, session.begin():
        opened = await open_or_join_case(session, mallory, ReportReason.SPAM, 10, False, T0)
        assert (opened.state, opened.priority, opened.top_reason) == ("open", 10, "spam")
        assert not opened.verified
        joined = await open_or_join_case(session, mallory, ReportReason.GROOMING, 50, True, T0 + 1)
        assert joined.id == opened.id
        assert (joined.priority, joined.top_reason, joined.verified, joined.updated_at_ms) == (
            50,
            "grooming",
            True,
            T0 + 1,
        )
        lower = await open_or_join_case(session, mallory, ReportReason.SPAM, 5, False, T0 + 2)
        assert lower.id == opened.id
        # A weaker report never lowers the priority nor unverifies the case.
        assert (lower.priority, lower.top_reason, lower.verified, lower.updated_at_ms) == (
            50,
            "grooming",
            True,
            T0 + 2,
        )


async def test_cases_are_per_subject(ctx: ServerContext) -> None:
    mallory, eve = await _user(ctx, "mallory"), await _user(ctx, "eve")
    async with ctx.sessions() as session, session.begin():
        first = await open_or_join_case(session, mallory, ReportReason.SPAM, 10, False, T0)
        second = await open_or_join_case(session, eve, ReportReason.SPAM, 10, False, T0)
        assert first.id != second.id


async def test_a_filed_report_is_kept_for_the_configured_retention(ctx: ServerContext) -> None:
    alice, mallory = await _user(ctx, "alice"), await _user(ctx, "mallory")
    by = AuthenticatedDevice(alice.id, UserId("alice"), DeviceId("A1"), AgeBand.TEEN_13_15)
    async with ctx.sessions() as session, session.begin():
        case = await open_or_join_case(session, mallory, ReportReason.GROOMING, 10, False, T0)
        report = await file_report(
            ctx,
            session,
            case=case,
            by=by,
            reported=mallory,
            reason=ReportReason.GROOMING,
            block=True,
            now_ms=T0,
        )
    assert report.id is not None
    assert report.case_id == case.id
    assert (report.reporter_user_id, report.reported_user_id) == (alice.id, mallory.id)
    assert (report.reason, report.reporter_age_band, report.blocked, report.note_enc) == (
        "grooming",
        AgeBand.TEEN_13_15.value,
        True,
        None,
    )
    assert (report.created_at_ms, report.expires_at_ms) == (T0, T0 + 30 * DAY_MS)

"""The 24 h bound on minors' grooming and sextortion reports, tracked server-side on a simulated clock:
the metrics count reports in time, late, overdue now and still waiting, and the share in time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from vigil.server.context import ServerContext
from vigil.server.db.accounts import UserRepository, UserRow
from vigil.server.db.cases import CaseRepository, CaseRow, ReportRow
from vigil.server.services.review_metrics import review_metrics
from vigil.server.settings import Settings

T0 = 1_800_000_000_000
HOUR = 3_600_000


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


@pytest.fixture
async def ctx(tmp_path: Path) -> AsyncIterator[ServerContext]:
    async with ServerContext.open(Settings(data_dir=tmp_path), clock_ms=Clock()) as c:
        yield c


async def _case(
    ctx: ServerContext, name: str, reason: str, band: str, first_action_after_h: float | None
) -> None:
    async with ctx.sessions() as session, session.begin():
        users = UserRepository(session)
        subject = await users.add(UserRow(username=name, age_band="adult", created_at_ms=T0))
        reporter = await users.add(UserRow(username=f"r_{name}", age_band=band, created_at_ms=T0))
        case = await CaseRepository(session).add(
            CaseRow(
                subject_user_id=subject.id,
                state="open",
                priority=80,
                top_reason=reason,
                verified=False,
                assignee_id=None,
                created_at_ms=T0,
                updated_at_ms=T0,
                queue="minors",
                first_action_at_ms=None
                if first_action_after_h is None
                else T0 + int(first_action_after_h * HOUR),
            )
        )
        session.add(
            ReportRow(
                case_id=case.id,
                reporter_user_id=reporter.id,
                reported_user_id=subject.id,
                reason=reason,
                reporter_age_band=band,
                blocked=False,
                created_at_ms=T0,
                expires_at_ms=T0 + 1_000 * HOUR,
            )
        )


async def test_minors_reports_against_the_24_hour_bound(ctx: ServerContext) -> None:
    await _case(ctx, "quick", "grooming", "13_15", 2)  # in time
    await _case(ctx, "slow", "sextortion", "under_13", None)  # acted on at 30 h: late
    await _case(ctx, "nobody", "grooming", "16_17", None)  # waiting, then overdue
    await _case(ctx, "adult_rep", "grooming", "adult", None)  # not covered: an adult reported
    await _case(ctx, "spam_teen", "spam", "13_15", None)  # not covered: not grooming/sextortion

    clock = ctx.clock_ms
    assert isinstance(clock, Clock)
    clock.now = T0 + 23 * HOUR
    bound = (await review_metrics(ctx)).minors_bound
    assert (bound.within, bound.late, bound.overdue, bound.waiting) == (1, 0, 0, 2)  # "slow" not yet late
    assert bound.share_within == 1.0

    clock.now = T0 + 25 * HOUR
    bound = (await review_metrics(ctx)).minors_bound
    assert (bound.within, bound.late, bound.overdue, bound.waiting) == (1, 0, 2, 0)  # two breaches now
    assert bound.share_within == pytest.approx(1 / 3)

    clock.now = T0 + 30 * HOUR  # a reviewer finally claims "slow": late, no longer overdue
    async with ctx.sessions() as session, session.begin():
        slow = await session.scalar(
            select(CaseRow)
            .join(UserRow, UserRow.id == CaseRow.subject_user_id)
            .where(UserRow.username == "slow")
        )
        assert slow is not None
        slow.first_action_at_ms = clock.now
    bound = (await review_metrics(ctx)).minors_bound
    assert (bound.within, bound.late, bound.overdue, bound.waiting) == (1, 1, 1, 0)
    assert bound.share_within == pytest.approx(1 / 3)

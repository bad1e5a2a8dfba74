"""Review metrics from what cases and account actions already record: time to first action and to
decision per queue, decisions per reviewer, and queue depth over time (reconstructed from when cases
opened and were decided), the overturn rate on appeal, and how many minors' grooming and sextortion
reports were in front of a reviewer within the stated 24 h bound (`vigil.safety.routing`)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from sqlalchemy import select

from vigil.protocol.reports import ReportReason
from vigil.protocol.wire import AgeBand
from vigil.safety.routing import (
    MINOR_REPORT_BOUND_MS,
    QueueName,
    reviewed_within_bound,
    under_minor_report_bound,
)
from vigil.server.context import ServerContext
from vigil.server.db.accounts import AccountActionRow
from vigil.server.db.appeals import AppealRow
from vigil.server.db.cases import CaseRow, ReportRow
from vigil.server.db.reviewers import ReviewerRow

__all__ = ["MinorsBound", "QueueMetrics", "ReviewMetrics", "review_metrics"]

_DECISIONS = ("warn", "restrict", "suspend", "dismiss")
DEPTH_POINTS = 12


@dataclass(frozen=True, slots=True)
class QueueMetrics:
    queue: QueueName
    opened: int
    decided: int
    median_first_action_ms: int | None
    median_decision_ms: int | None


@dataclass(frozen=True, slots=True)
class MinorsBound:
    """Minors' grooming and sextortion reports against the 24 h bound."""

    bound_ms: int
    within: int  # in front of a reviewer in time
    late: int  # in front of a reviewer, but after the bound
    overdue: int  # nobody has acted yet and the bound has run out: a breach now
    waiting: int  # nobody has acted yet, still within the bound

    @property
    def share_within(self) -> float | None:
        """Of the reports whose outcome is known (reviewed, or overdue), the share reviewed in time."""
        known = self.within + self.late + self.overdue
        return self.within / known if known else None


@dataclass(frozen=True, slots=True)
class ReviewMetrics:
    queues: list[QueueMetrics]
    decisions_by_reviewer: list[tuple[str, int]]
    depth_times_ms: list[int]
    depth: dict[QueueName, list[int]]  # open cases per queue at each of `depth_times_ms`
    appeals_decided: int = 0
    appeals_overturned: int = 0
    minors_bound: MinorsBound = MinorsBound(MINOR_REPORT_BOUND_MS, 0, 0, 0, 0)

    @property
    def overturn_rate(self) -> float | None:
        """The share of decided appeals that were overturned (None before any was decided)."""
        return self.appeals_overturned / self.appeals_decided if self.appeals_decided else None


def _median(values: list[int]) -> int | None:
    return int(statistics.median(values)) if values else None


async def review_metrics(ctx: ServerContext) -> ReviewMetrics:
    now = ctx.clock_ms()
    async with ctx.sessions() as session:
        cases = (
            await session.execute(
                select(
                    CaseRow.queue, CaseRow.created_at_ms, CaseRow.first_action_at_ms, CaseRow.decided_at_ms
                )
            )
        ).all()
        decisions = (
            await session.execute(
                select(ReviewerRow.username, AccountActionRow.id)
                .join(ReviewerRow, ReviewerRow.id == AccountActionRow.reviewer_id)
                .where(AccountActionRow.action.in_(_DECISIONS))
            )
        ).all()
        appeal_states = (await session.scalars(select(AppealRow.state))).all()
        minors_reports = (
            await session.execute(
                select(
                    ReportRow.reason,
                    ReportRow.reporter_age_band,
                    ReportRow.created_at_ms,
                    CaseRow.first_action_at_ms,
                )
                .join(CaseRow, CaseRow.id == ReportRow.case_id)
                .where(
                    ReportRow.reason.in_([ReportReason.GROOMING.value, ReportReason.SEXTORTION.value]),
                    ReportRow.reporter_age_band != AgeBand.ADULT.value,
                )
            )
        ).all()
    outcomes = [
        reviewed_within_bound(created, first_action, now)
        for reason, band, created, first_action in minors_reports
        if under_minor_report_bound(ReportReason(reason), AgeBand(band))
    ]
    unreviewed = [
        created
        for reason, band, created, first_action in minors_reports
        if first_action is None and under_minor_report_bound(ReportReason(reason), AgeBand(band))
    ]
    overdue = sum(1 for created in unreviewed if now - created > MINOR_REPORT_BOUND_MS)
    decided_appeals = [state for state in appeal_states if state != "pending"]
    per_queue = []
    for queue in QueueName:
        mine = [c for c in cases if c.queue == queue.value]
        per_queue.append(
            QueueMetrics(
                queue,
                opened=len(mine),
                decided=sum(1 for c in mine if c.decided_at_ms is not None),
                median_first_action_ms=_median(
                    [c.first_action_at_ms - c.created_at_ms for c in mine if c.first_action_at_ms is not None]
                ),
                median_decision_ms=_median(
                    [c.decided_at_ms - c.created_at_ms for c in mine if c.decided_at_ms is not None]
                ),
            )
        )
    counts: dict[str, int] = {}
    for username, _id in decisions:
        counts[username] = counts.get(username, 0) + 1
    start = min((c.created_at_ms for c in cases), default=now)
    step = max(1, (now - start) // (DEPTH_POINTS - 1))
    times = [start + i * step for i in range(DEPTH_POINTS - 1)] + [now]
    depth = {
        queue: [
            sum(
                1
                for c in cases
                if c.queue == queue.value
                and c.created_at_ms <= t
                and (c.decided_at_ms is None or c.decided_at_ms > t)
            )
            for t in times
        ]
        for queue in QueueName
    }
    return ReviewMetrics(
        per_queue,
        sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])),
        times,
        depth,
        appeals_decided=len(decided_appeals),
        appeals_overturned=sum(1 for state in decided_appeals if state == "overturned"),
        minors_bound=MinorsBound(
            MINOR_REPORT_BOUND_MS,
            within=outcomes.count(True),
            late=outcomes.count(False) - overdue,
            overdue=overdue,
            waiting=outcomes.count(None),
        ),
    )

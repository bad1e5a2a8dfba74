"""Review metrics from what cases and account actions already record: time to first action and to
decision per queue, decisions per reviewer, and queue depth over time (reconstructed from when cases
opened and were decided), and the overturn rate on appeal."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from sqlalchemy import select

from vigil.safety.routing import QueueName
from vigil.server.context import ServerContext
from vigil.server.db.accounts import AccountActionRow
from vigil.server.db.appeals import AppealRow
from vigil.server.db.cases import CaseRow
from vigil.server.db.reviewers import ReviewerRow

__all__ = ["QueueMetrics", "ReviewMetrics", "review_metrics"]

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
class ReviewMetrics:
    queues: list[QueueMetrics]
    decisions_by_reviewer: list[tuple[str, int]]
    depth_times_ms: list[int]
    depth: dict[QueueName, list[int]]  # open cases per queue at each of `depth_times_ms`
    appeals_decided: int = 0
    appeals_overturned: int = 0

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
    )

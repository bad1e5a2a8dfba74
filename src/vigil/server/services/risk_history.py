"""Risk scores with their reasons over time, for investigations: each scoring pass records the assessment
of every account it decided on (scores at or above the lowest threshold) when it differs from that
account's previous row: another level, a score moved by at least `SCORE_STEP`, other reasons, or a day
since the last row. Rows go after `VIGIL_RISK_HISTORY_RETENTION_DAYS` (the `risk_history` sweep)."""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from vigil.safety.behavior.policy import Decision
from vigil.server.context import ServerContext
from vigil.server.db.metadata import RiskHistoryRepository, RiskHistoryRow

__all__ = ["RESTATE_MS", "SCORE_STEP", "RiskPoint", "history_of", "record_assessments", "sweep_risk_history"]

SCORE_STEP = 0.05
RESTATE_MS = 24 * 3_600_000
_DAY_MS = 24 * 3_600_000


@dataclass(frozen=True, slots=True)
class RiskPoint:
    at_ms: int
    score: float
    level: str
    model: str
    reasons: tuple[str, ...]


def _worth_recording(previous: RiskPoint | None, point: RiskPoint) -> bool:
    if previous is None:
        return True
    return (
        previous.level != point.level
        or abs(previous.score - point.score) >= SCORE_STEP
        or previous.reasons != point.reasons
        or point.at_ms - previous.at_ms >= RESTATE_MS
    )


def _point_of(row: RiskHistoryRow) -> RiskPoint:
    return RiskPoint(row.at_ms, row.score, row.level, row.model, tuple(json.loads(row.reasons)))


async def record_assessments(
    session: AsyncSession,
    decisions: Sequence[Decision],
    user_ids: Mapping[str, int],
    now_ms: int,
    latest: MutableMapping[int, RiskPoint | None] | None = None,
) -> int:
    """Adds a row per decided account whose assessment changed, inside the scoring pass's transaction, in
    one insert; `user_ids` maps a decision's account (its pseudonym) to the account's id. Returns how many
    rows. `latest`, when given, is the caller's copy of each account's newest row (None: none) kept
    between calls: accounts missing from it are read from the table, and it is updated with what is
    written (the scoring pass keeps it in its state, so a pass reads only accounts decided for the first
    time; only the pass writes rows, and the retention sweep never removes a row younger than
    `RESTATE_MS`, the oldest a newest row can be and still be compared)."""
    subjects = [(user_ids[d.user], d) for d in decisions if d.user in user_ids]
    repository = RiskHistoryRepository(session)
    known = {} if latest is None else latest
    unknown = [user_id for user_id, _ in subjects if user_id not in known]
    if unknown:
        found = await repository.latest(unknown)
        for user_id in unknown:
            row = found.get(user_id)
            known[user_id] = None if row is None else _point_of(row)
    rows = []
    for user_id, decision in subjects:
        point = RiskPoint(
            at_ms=now_ms,
            score=round(decision.assessment.score, 4),
            level=decision.level.value,
            model=decision.assessment.model_version[:40],
            reasons=tuple(r.text for r in decision.assessment.reasons),
        )
        if _worth_recording(known.get(user_id), point):
            rows.append(
                {
                    "user_id": user_id,
                    "at_ms": point.at_ms,
                    "score": point.score,
                    "level": point.level,
                    "model": point.model,
                    "reasons": json.dumps(list(point.reasons)),
                }
            )
            known[user_id] = point
    await repository.add_many(rows)
    return len(rows)


async def history_of(session: AsyncSession, user_id: int, limit: int = 50) -> list[RiskPoint]:
    """The account's newest `limit` assessments, oldest first."""
    return [_point_of(row) for row in await RiskHistoryRepository(session).of_user(user_id, limit)]


async def sweep_risk_history(ctx: ServerContext, now_ms: int) -> int:
    cutoff = now_ms - ctx.settings.risk_history_retention_days * _DAY_MS
    async with ctx.sessions() as session, session.begin():
        return await RiskHistoryRepository(session).delete_before(cutoff)

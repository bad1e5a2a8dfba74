"""Risk scores with their reasons over time, for investigations: each scoring pass records the assessment
of every account it decided on (scores at or above the lowest threshold) when it differs from that
account's previous row: another level, a score moved by at least `SCORE_STEP`, other reasons, or a day
since the last row. Rows go after `VIGIL_RISK_HISTORY_RETENTION_DAYS` (the `risk_history` sweep)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
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


def _worth_recording(previous: RiskHistoryRow | None, point: RiskPoint) -> bool:
    if previous is None:
        return True
    return (
        previous.level != point.level
        or abs(previous.score - point.score) >= SCORE_STEP
        or tuple(json.loads(previous.reasons)) != point.reasons
        or point.at_ms - previous.at_ms >= RESTATE_MS
    )


async def record_assessments(
    session: AsyncSession, decisions: Sequence[Decision], user_ids: Mapping[str, int], now_ms: int
) -> int:
    """Adds a row per decided account whose assessment changed, inside the scoring pass's transaction;
    `user_ids` maps a decision's account (its pseudonym) to the account's id. Returns how many rows."""
    subjects = [(user_ids[d.user], d) for d in decisions if d.user in user_ids]
    repository = RiskHistoryRepository(session)
    previous = await repository.latest([user_id for user_id, _ in subjects])
    added = 0
    for user_id, decision in subjects:
        point = RiskPoint(
            at_ms=now_ms,
            score=round(decision.assessment.score, 4),
            level=decision.level.value,
            model=decision.assessment.model_version[:40],
            reasons=tuple(r.text for r in decision.assessment.reasons),
        )
        if _worth_recording(previous.get(user_id), point):
            repository.add(
                RiskHistoryRow(
                    user_id=user_id,
                    at_ms=point.at_ms,
                    score=point.score,
                    level=point.level,
                    model=point.model,
                    reasons=json.dumps(list(point.reasons)),
                )
            )
            added += 1
    return added


async def history_of(session: AsyncSession, user_id: int, limit: int = 50) -> list[RiskPoint]:
    """The account's newest `limit` assessments, oldest first."""
    return [
        RiskPoint(row.at_ms, row.score, row.level, row.model, tuple(json.loads(row.reasons)))
        for row in await RiskHistoryRepository(session).of_user(user_id, limit)
    ]


async def sweep_risk_history(ctx: ServerContext, now_ms: int) -> int:
    cutoff = now_ms - ctx.settings.risk_history_retention_days * _DAY_MS
    async with ctx.sessions() as session, session.begin():
        return await RiskHistoryRepository(session).delete_before(cutoff)

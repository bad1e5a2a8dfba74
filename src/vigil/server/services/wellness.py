"""Reviewer wellness: how many images a reviewer revealed today (UTC), counted from the audit log."""

from __future__ import annotations

from sqlalchemy import func, select

from vigil.server.context import ServerContext
from vigil.server.db.audit import AuditRow

__all__ = ["REVEAL_ACTIONS", "exposures_today"]

REVEAL_ACTIONS = ("evidence.image_revealed", "image_match.image_revealed")
_DAY_MS = 86_400_000


async def exposures_today(ctx: ServerContext, actor: str) -> int:
    now = ctx.clock_ms()
    async with ctx.sessions() as session:
        found = await session.scalar(
            select(func.count(AuditRow.id)).where(
                AuditRow.actor == actor,
                AuditRow.action.in_(REVEAL_ACTIONS),
                AuditRow.ts_ms >= now - now % _DAY_MS,
            )
        )
    return int(found or 0)

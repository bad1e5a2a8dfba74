"""Console helpers that read the audit log outside a request (the standalone console and its CLI)."""

from __future__ import annotations

from vigil.server.context import ServerContext
from vigil.server.db.audit import AuditRow
from vigil.server.services.audit import recent_entries

__all__ = ["recent_audit"]


async def recent_audit(ctx: ServerContext, limit: int = 200) -> list[AuditRow]:
    async with ctx.sessions() as session:
        return await recent_entries(session, limit)

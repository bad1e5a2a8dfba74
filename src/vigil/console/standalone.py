"""What `vigil console serve` and the console CLI need when no server process shares its context."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from vigil.server.blobstore import BlobStore
from vigil.server.context import ServerContext
from vigil.server.db.engine import create_engine, migrate, session_factory
from vigil.server.db.safety_models import AuditRow
from vigil.server.delivery import DeliveryHub
from vigil.server.services.audit import recent_entries
from vigil.server.settings import Settings

__all__ = ["recent_audit", "standalone_context"]


@contextlib.asynccontextmanager
async def standalone_context(settings: Settings) -> AsyncIterator[ServerContext]:
    """A context on the configured database (migrated first). Messages are never delivered from here."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.resolved_database_url)
    try:
        await migrate(engine)
        yield ServerContext(
            settings=settings,
            engine=engine,
            sessions=session_factory(engine),
            franking_key=settings.load_franking_key(),
            delivery=DeliveryHub(None),
            blobs=BlobStore(settings.blob_dir),
        )
    finally:
        await engine.dispose()


async def recent_audit(ctx: ServerContext, limit: int = 200) -> list[AuditRow]:
    async with ctx.sessions() as session:
        return await recent_entries(session, limit)

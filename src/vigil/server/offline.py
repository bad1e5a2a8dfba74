"""A server context without a running server: for the command line and the standalone console, which
act on the same database and services but deliver nothing themselves."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from vigil.server.blobstore import BlobStore
from vigil.server.context import ServerContext
from vigil.server.db.engine import create_engine, migrate, session_factory
from vigil.server.delivery import DeliveryHub
from vigil.server.settings import Settings

__all__ = ["offline_context"]


@contextlib.asynccontextmanager
async def offline_context(settings: Settings) -> AsyncIterator[ServerContext]:
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

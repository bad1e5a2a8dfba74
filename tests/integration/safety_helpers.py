"""Helpers for the trust & safety tests: the server's own services, run against the live server's
database (the same code the console runs), and report helpers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from vigil.server.blobstore import BlobStore
from vigil.server.context import ServerContext
from vigil.server.db.engine import create_engine, session_factory
from vigil.server.delivery import DeliveryHub
from vigil.server.settings import Settings


@contextlib.asynccontextmanager
async def server_context(data_dir: Path, database_url: str) -> AsyncIterator[ServerContext]:
    settings = Settings(data_dir=data_dir, database_url=database_url)
    engine = create_engine(settings.resolved_database_url)
    try:
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

"""Helpers for the trust & safety tests: the server's own services, run against the live server's
database (the same code the console runs), and report helpers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from vigil.server.context import ServerContext
from vigil.server.settings import Settings


@contextlib.asynccontextmanager
async def server_context(data_dir: Path, database_url: str) -> AsyncIterator[ServerContext]:
    async with ServerContext.open(Settings(data_dir=data_dir, database_url=database_url)) as ctx:
        yield ctx

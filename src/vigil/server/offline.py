"""A server context without a running server: for the command line and the standalone console, which
act on the same database and services but deliver nothing themselves."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from vigil.server.context import ServerContext
from vigil.server.settings import Settings

__all__ = ["offline_context"]


@contextlib.asynccontextmanager
async def offline_context(settings: Settings) -> AsyncIterator[ServerContext]:
    """A context on the configured database (migrated first). Messages are never delivered from here.
    Raises ValidationError outside dev when a key is not configured."""
    async with ServerContext.open(settings) as ctx:
        yield ctx

"""A server context without a running server: for the command line and the standalone console, which
act on the same database and services but deliver nothing themselves."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from vigil.server.context import ServerContext
from vigil.server.delivery import DeliveryHub
from vigil.server.settings import Settings

__all__ = ["offline_context"]


@contextlib.asynccontextmanager
async def offline_context(settings: Settings) -> AsyncIterator[ServerContext]:
    """A context on the configured database (migrated first). Messages are never delivered from here;
    with `VIGIL_REDIS_URL` set, credential changes made here (a suspension from the standalone console)
    reach the running workers at once. Raises ValidationError outside dev when a key is not configured."""
    delivery = DeliveryHub(settings.redis_url, settings.resolved_redis_namespace)
    async with ServerContext.open(settings, delivery) as ctx:
        await delivery.start()
        try:
            yield ctx
        finally:
            await delivery.stop()

"""What every service needs, built once by `create_app`: settings, database, keys, delivery, clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from vigil.server.blobstore import BlobStore
from vigil.server.delivery import DeliveryHub
from vigil.server.settings import Settings

__all__ = ["ServerContext", "system_clock_ms"]


def system_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class ServerContext:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    franking_key: bytes
    delivery: DeliveryHub
    blobs: BlobStore
    clock_ms: Callable[[], int] = field(default=system_clock_ms)
    # Loaded on first use by `vigil.server.services.evidence.evidence_box` (reported content at rest).
    report_key: bytes | None = None
    # Loaded on first use by `vigil.server.services.notices` (the safety-notice signing seed).
    notice_key: bytes | None = None

"""What every service needs, built in one place (`ServerContext.open`): settings, database, keys,
delivery, clock, and the state services share across requests (the group-commit batchers)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from vigil.server.authcache import AuthCache
from vigil.server.batching import Batchers
from vigil.server.blobstore import BlobBackend, DiskBlobStore
from vigil.server.blobstore_database import DatabaseBlobStore
from vigil.server.blobstore_s3 import S3BlobStore, S3Location
from vigil.server.db.engine import create_engine, migrate, session_factory
from vigil.server.db.metadata import MetadataRepository
from vigil.server.db.pseudonyms import derive_pseudonym_key
from vigil.server.delivery import DeliveryHub
from vigil.server.hashindex import BankMatcherCache
from vigil.server.ratelimit import RateLimiter
from vigil.server.retention_metrics import RetentionMetrics
from vigil.server.settings import BlobBackendKind, Settings

__all__ = ["ServerContext", "open_blob_backend", "system_clock_ms"]


def system_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class ServerContext:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    franking_key: bytes
    report_key: bytes  # seals reported content at rest (`vigil.server.services.evidence`)
    notice_key: bytes  # the Ed25519 seed that signs safety notices (`vigil.server.services.notices`)
    delivery: DeliveryHub
    blobs: BlobBackend
    clock_ms: Callable[[], int] = field(default=system_clock_ms)
    batchers: Batchers = field(default_factory=Batchers)
    limiter: RateLimiter = field(default_factory=RateLimiter.disabled)
    retention: RetentionMetrics = field(default_factory=RetentionMetrics)  # what the sweeps did
    # Authenticated devices (`services.accounts.authenticate`); see `credentials_changed`.
    credentials: AuthCache[Any] = field(default_factory=lambda: AuthCache(0))
    # The risk scorer's state between passes (`services.risk.RiskScoringState`; typed there, because this
    # module sits below the services).
    risk_state: object | None = None
    # The server-side PDQ matcher for the enabled banks (`services.hashlist.match_image`), saved under
    # the data directory so a restart loads it instead of rebuilding.
    bank_matchers: BankMatcherCache = field(default_factory=lambda: BankMatcherCache(None))

    # VIGIL_METADATA_PSEUDONYM_KEY when configured (`open` sets it); None: derived from the report key.
    metadata_pseudonym_key: bytes | None = None

    @property
    def pseudonym_key(self) -> bytes:
        """Keys the metadata log's account pseudonyms (`vigil.server.db.pseudonyms`)."""
        if self.metadata_pseudonym_key is not None:
            return self.metadata_pseudonym_key
        return derive_pseudonym_key(self.report_key)

    async def credentials_changed(
        self, *, user_ids: Iterable[int] = (), device_ids: Iterable[str] = ()
    ) -> None:
        """Call after committing a change that must refuse credentials at once (a suspension, a device
        removed, a credential replaced): empties this process's cache and tells the other workers."""
        users, devices = list(user_ids), list(device_ids)
        self.credentials.invalidate_users(users)
        self.credentials.invalidate_devices(devices)
        self.credentials.announce()
        await self.delivery.credentials_changed(user_ids=users, device_ids=devices)

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        settings: Settings,
        delivery: DeliveryHub | None = None,
        *,
        clock_ms: Callable[[], int] = system_clock_ms,
        limiter: RateLimiter | None = None,
    ) -> AsyncIterator[ServerContext]:
        """A context on the configured database, migrated first; the engine is disposed on exit.

        `delivery` wakes connected devices; the caller starts and stops it. Without one, nothing is
        delivered from this context (the command line, the standalone console, tests). `limiter`
        counts requests at the API; without one, nothing is limited. Raises
        ValidationError outside dev when a key is not configured.
        """
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        franking_key = settings.load_franking_key()
        report_key = settings.load_report_key()
        notice_key = settings.load_notice_signing_key()
        engine = create_engine(settings.resolved_database_url)
        delivery = delivery if delivery is not None else DeliveryHub(None)
        credentials: AuthCache[Any] = AuthCache(
            settings.auth_cache_seconds, marker=settings.data_dir / "credentials-changed"
        )
        delivery.credentials = credentials
        try:
            pseudonym_key = settings.load_pseudonym_key(report_key)
            await migrate(engine, pseudonym_key=pseudonym_key)
            sessions = session_factory(engine)
            # A rotation renames the log before anything reads it (one name per account); a log already
            # under this key costs one read.
            async with sessions() as session, session.begin():
                await MetadataRepository(session).settle_pseudonym_key(
                    settings.previous_pseudonym_keys(report_key), pseudonym_key
                )
            async with open_blob_backend(settings, sessions) as blobs:
                yield cls(
                    settings=settings,
                    engine=engine,
                    sessions=sessions,
                    franking_key=franking_key,
                    report_key=report_key,
                    notice_key=notice_key,
                    delivery=delivery,
                    blobs=blobs,
                    clock_ms=clock_ms,
                    limiter=limiter if limiter is not None else RateLimiter.disabled(),
                    credentials=credentials,
                    bank_matchers=BankMatcherCache(settings.data_dir / "pdq-index"),
                    metadata_pseudonym_key=pseudonym_key,
                )
        finally:
            await engine.dispose()


@contextlib.asynccontextmanager
async def open_blob_backend(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[BlobBackend]:
    """The blob backend `VIGIL_BLOB_BACKEND` names, open for as long as the context."""
    if settings.blob_backend is BlobBackendKind.POSTGRES:
        yield DatabaseBlobStore(sessions)
    elif settings.blob_backend is BlobBackendKind.S3:
        secret = settings.s3_secret_access_key
        location = S3Location(
            bucket=settings.s3_bucket,
            endpoint_url=settings.s3_endpoint,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret is not None else None,
        )
        async with S3BlobStore.open_bucket(location) as store:
            yield store
    else:
        yield DiskBlobStore(settings.blob_dir)

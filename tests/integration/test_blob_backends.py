"""Each blob backend (local disk, chunked rows in PostgreSQL, S3 against a real local S3-speaking server)
stores, streams back and deletes blobs, refuses one past its size limit or empty leaving nothing behind,
and holds to the account quota through the upload service."""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from live_server import create_postgres_database, drop_postgres_database, require_backend
from s3_server import S3_ACCESS_KEY, S3_SECRET_KEY, create_bucket, s3_server
from sqlalchemy import select

from vigil.errors import NotFoundError, ValidationError
from vigil.protocol.olm import DeviceAccount
from vigil.protocol.wire import RegisterAccountRequest
from vigil.server.blobstore import BlobBackend
from vigil.server.capacity import InsufficientStorage, PayloadTooLarge
from vigil.server.context import ServerContext
from vigil.server.db.blobs import BlobChunkRow, BlobRepository
from vigil.server.services import accounts, blobs, retention
from vigil.server.services.accounts import AuthenticatedDevice
from vigil.server.settings import Settings

BACKENDS = ["disk", "postgres", "s3"]


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with s3_server(tmp_path_factory.mktemp("moto")) as endpoint:
        yield endpoint


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    kind: str = request.param
    require_backend("postgres")  # every variant keeps its blob rows in PostgreSQL, as a deployment would
    database, url = create_postgres_database()
    extra: dict[str, str] = {}
    if kind == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        extra = {
            "s3_endpoint": endpoint,
            "s3_bucket": create_bucket(endpoint),
            "s3_access_key_id": S3_ACCESS_KEY,
            "s3_secret_access_key": S3_SECRET_KEY,
        }
    try:
        yield Settings(data_dir=tmp_path / "data", database_url=url, blob_backend=kind, **extra)  # type: ignore[arg-type]
    finally:
        drop_postgres_database(database)


async def _stream(data: bytes, piece: int = 100_000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), piece):
        yield data[start : start + piece]


async def _read_all(store: BlobBackend, blob_id: str) -> bytes:
    return b"".join([chunk async for chunk in await store.open(blob_id)])


@pytest.mark.parametrize("settings", BACKENDS, indirect=True)
async def test_backend_stores_streams_and_deletes(settings: Settings) -> None:
    async with ServerContext.open(settings) as ctx:
        store = ctx.blobs
        small_id, large_id = secrets.token_hex(16), secrets.token_hex(16)
        small = secrets.token_bytes(1000)
        # Larger than an S3 part and many database chunks: the multi-piece paths are exercised.
        large = secrets.token_bytes(6 * 1024 * 1024 + 12345)
        assert await store.receive(small_id, _stream(small), max_bytes=10_000) == len(small)
        assert await store.receive(large_id, _stream(large), max_bytes=len(large)) == len(large)
        assert await _read_all(store, small_id) == small
        chunks = [chunk async for chunk in await store.open(large_id)]
        assert b"".join(chunks) == large
        assert len(chunks) > 1 and max(len(c) for c in chunks) < len(large)  # streamed, not whole

        await store.delete(large_id)
        with pytest.raises(NotFoundError):
            await store.open(large_id)
        await store.delete(large_id)  # deleting twice is fine
        assert await _read_all(store, small_id) == small  # other blobs untouched


@pytest.mark.parametrize("settings", BACKENDS, indirect=True)
async def test_backend_refuses_oversized_and_empty_leaving_nothing(settings: Settings) -> None:
    async with ServerContext.open(settings) as ctx:
        store = ctx.blobs
        oversized = secrets.token_hex(16)
        with pytest.raises(PayloadTooLarge):
            await store.receive(oversized, _stream(secrets.token_bytes(6 * 1024 * 1024)), max_bytes=5_500_000)
        with pytest.raises(NotFoundError):
            await store.open(oversized)
        empty = secrets.token_hex(16)
        with pytest.raises(ValidationError):
            await store.receive(empty, _stream(b""), max_bytes=100)
        with pytest.raises(NotFoundError):
            await store.open(empty)
        with pytest.raises(NotFoundError):
            await store.open(secrets.token_hex(16))
        with pytest.raises(ValidationError):
            await store.open("../../etc/passwd")


async def _register(ctx: ServerContext, username: str) -> AuthenticatedDevice:
    registered = await accounts.register_account(
        ctx,
        RegisterAccountRequest(
            username=username, birth_date=dt.date(1990, 1, 1), device=DeviceAccount().device_keys()
        ),
    )
    return await accounts.authenticate(ctx, registered.credential)


@pytest.mark.parametrize("settings", BACKENDS, indirect=True)
async def test_quota_and_deletion_once_the_last_recipient_read_it(settings: Settings) -> None:
    settings = settings.model_copy(update={"blob_quota_bytes_per_account": 1_000_000})
    async with ServerContext.open(settings) as ctx:
        alice = await _register(ctx, "alice")
        bob = await _register(ctx, "bob")
        first = await blobs.upload_blob(ctx, alice, _stream(secrets.token_bytes(600_000)))
        # The quota counts the unfetched blob: a second one that would pass it is refused, leaving nothing.
        with pytest.raises(InsufficientStorage):
            await blobs.upload_blob(ctx, alice, _stream(secrets.token_bytes(600_000)))
        async with ctx.sessions() as session, session.begin():
            repository = BlobRepository(session)
            await repository.add_fetchers(first.blob_id, [bob.device_id])
            row = await repository.get(first.blob_id)
            assert row is not None
            row.attached = True

        download = await blobs.download_blob(ctx, bob, first.blob_id)
        iterator = download.chunks
        await anext(iterator)
        await iterator.aclose()  # cut off halfway: bob may fetch it again
        download = await blobs.download_blob(ctx, bob, first.blob_id)
        assert download.size == 600_000 and len(b"".join([c async for c in download.chunks])) == 600_000
        with pytest.raises(NotFoundError):  # read to the end by its last recipient: gone everywhere
            await blobs.download_blob(ctx, bob, first.blob_id)
        with pytest.raises(NotFoundError):
            await ctx.blobs.open(first.blob_id)
        await blobs.upload_blob(ctx, alice, _stream(secrets.token_bytes(600_000)))  # room again


async def _leave_unfinished_upload(ctx: ServerContext, settings: Settings) -> None:
    """What a node killed mid-upload leaves behind, in each backend's own form."""
    blob_id = secrets.token_hex(16)
    if settings.blob_backend.value == "disk":
        part = settings.blob_dir / blob_id[:2] / f"{blob_id}.part"
        part.parent.mkdir(parents=True, exist_ok=True)
        part.write_bytes(b"half a blob")
    elif settings.blob_backend.value == "postgres":
        async with ctx.sessions() as session, session.begin():
            session.add(BlobChunkRow(blob_id=blob_id, seq=0, data=b"half", created_at_ms=_wall_ms()))
    else:
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint,
            aws_access_key_id=S3_ACCESS_KEY,
            aws_secret_access_key=S3_SECRET_KEY,
            region_name="us-east-1",
        )
        started = client.create_multipart_upload(Bucket=settings.s3_bucket, Key=blob_id)
        client.upload_part(
            Bucket=settings.s3_bucket,
            Key=blob_id,
            UploadId=started["UploadId"],
            PartNumber=1,
            Body=b"x" * 1000,
        )
        assert len(client.list_multipart_uploads(Bucket=settings.s3_bucket).get("Uploads", [])) == 1


async def _leftovers_left(ctx: ServerContext, settings: Settings) -> int:
    if settings.blob_backend.value == "disk":
        return len(list(settings.blob_dir.rglob("*.part")))
    if settings.blob_backend.value == "postgres":
        async with ctx.sessions() as session:
            return len(set((await session.scalars(select(BlobChunkRow.blob_id))).all()))
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint,
        aws_access_key_id=S3_ACCESS_KEY,
        aws_secret_access_key=S3_SECRET_KEY,
        region_name="us-east-1",
    )
    return len(client.list_multipart_uploads(Bucket=settings.s3_bucket).get("Uploads", []))


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.mark.parametrize("settings", BACKENDS, indirect=True)
async def test_leftovers_sweep_removes_abandoned_uploads_and_unreferenced_blobs(settings: Settings) -> None:
    async with ServerContext.open(settings) as ctx:
        alice = await _register(ctx, "alice")
        kept = await blobs.upload_blob(ctx, alice, _stream(b"k" * 3000))
        # A blob stored but never given a row (the node died between the two), and an unfinished upload.
        orphan = secrets.token_hex(16)
        await ctx.blobs.receive(orphan, _stream(b"o" * 3000), max_bytes=10_000)
        # Nothing is touched while it may still be an upload in progress.
        assert await blobs.sweep_blob_leftovers(ctx, _wall_ms()) == 0
        await _leave_unfinished_upload(ctx, settings)
        if settings.blob_backend.value != "s3":
            # (moto_server dates every multipart upload 2010-11-10, so there a fresh one looks old.)
            assert await blobs.sweep_blob_leftovers(ctx, _wall_ms()) == 0
        unfinished_before = await _leftovers_left(ctx, settings)
        assert await _read_all(ctx.blobs, orphan) == b"o" * 3000

        later = _wall_ms() + blobs.ABANDONED_AFTER_MS + 60_000
        [sweep] = [s for s in retention.SWEEPS if s.name == "blob_leftovers"]
        assert await retention.run_sweep(ctx, sweep, later) == 2  # the orphan and the unfinished upload
        assert ctx.retention.sweeps["blob_leftovers"].last_deleted == 2
        with pytest.raises(NotFoundError):
            await ctx.blobs.open(orphan)
        assert await _leftovers_left(ctx, settings) == unfinished_before - (
            2 if settings.blob_backend.value == "postgres" else 1
        )
        assert await _read_all(ctx.blobs, kept.blob_id) == b"k" * 3000  # a blob with its row stays
        assert await retention.run_sweep(ctx, sweep, later) == 0

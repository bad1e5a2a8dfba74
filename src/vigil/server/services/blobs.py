"""Encrypted attachment blobs: upload, access-checked download, deletion once fetched or expired."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterable, AsyncIterator, Collection
from dataclasses import dataclass

from vigil.errors import NotFoundError, PermissionDenied
from vigil.protocol.wire import BlobUploaded
from vigil.server.capacity import InsufficientStorage, PayloadTooLarge
from vigil.server.context import ServerContext
from vigil.server.db.blobs import BlobRepository, BlobRow
from vigil.server.services.accounts import AuthenticatedDevice
from vigil.server.services.preservation import held_data

__all__ = [
    "ABANDONED_AFTER_MS",
    "BlobDownload",
    "download_blob",
    "sweep_blob_leftovers",
    "sweep_expired_blobs",
    "upload_blob",
]

ABANDONED_AFTER_MS = 24 * 3600 * 1000
"""An upload or stored blob untouched this long with no blob row is a leftover, never one in progress."""


async def upload_blob(
    ctx: ServerContext,
    by: AuthenticatedDevice,
    chunks: AsyncIterable[bytes],
    *,
    declared_size: int | None = None,
) -> BlobUploaded:
    """Stores an encrypted blob under a fresh random id: the same bytes uploaded twice are two blobs.
    An account keeps at most `blob_quota_bytes_per_account` of unfetched blobs, and uploads leave
    `blob_disk_reserve_bytes` free on the disk, so blobs cannot take the room the database needs.

    Raises ValidationError for an empty blob, PayloadTooLarge past `max_blob_bytes`, and
    InsufficientStorage when the account's quota or the disk reserve would be exceeded."""
    settings = ctx.settings
    now_ms = ctx.clock_ms()
    async with ctx.sessions() as session:
        stored = await BlobRepository(session).stored_bytes(by.user_id, now_ms)
    quota_left = settings.blob_quota_bytes_per_account - stored
    free = await ctx.blobs.free_bytes()
    # A shared remote store has no free-space figure here; the account quota still bounds each account.
    disk_left = settings.max_blob_bytes if free is None else free - settings.blob_disk_reserve_bytes
    room = min(quota_left, disk_left)
    if declared_size is not None and declared_size > settings.max_blob_bytes:
        raise PayloadTooLarge(f"the blob is larger than {settings.max_blob_bytes} bytes")
    if room <= 0 or (declared_size is not None and declared_size > room):
        raise _no_room(quota_left, disk_left, settings.blob_quota_bytes_per_account)
    blob_id = secrets.token_hex(16)
    try:
        size = await ctx.blobs.receive(blob_id, chunks, max_bytes=min(settings.max_blob_bytes, room))
    except PayloadTooLarge:
        if room < settings.max_blob_bytes:
            raise _no_room(quota_left, disk_left, settings.blob_quota_bytes_per_account) from None
        raise
    try:
        async with ctx.sessions() as session, session.begin():
            await BlobRepository(session).add(
                BlobRow(
                    id=blob_id,
                    uploader_device_id=by.device_id,
                    uploader_user_id=by.user_id,
                    size=size,
                    created_at_ms=now_ms,
                    expires_at_ms=now_ms + settings.blob_ttl_seconds * 1000,
                )
            )
    except BaseException:
        await ctx.blobs.delete(blob_id)  # nothing refers to it
        raise
    return BlobUploaded(blob_id=blob_id, size=size)


def _no_room(quota_left: int, disk_left: int, quota: int) -> InsufficientStorage:
    if quota_left <= disk_left:
        return InsufficientStorage(
            f"this account's unfetched blobs would exceed its quota of {quota} bytes; "
            "retry once recipients have fetched them"
        )
    return InsufficientStorage("the server has no room for blobs right now")


@dataclass(frozen=True, slots=True)
class BlobDownload:
    size: int
    chunks: AsyncIterator[bytes]


async def download_blob(ctx: ServerContext, by: AuthenticatedDevice, blob_id: str) -> BlobDownload:
    """The blob, streamed, for its uploader or a device it was sent to. Raises NotFoundError or
    PermissionDenied before any byte is sent. Once the stream has been read to the end by a recipient
    device, that device is done with it, and when every recipient device is done the blob is deleted
    (unless a preservation hold names it); a download cut off halfway leaves the device free to fetch it
    again."""
    async with ctx.sessions() as session:
        blobs = BlobRepository(session)
        blob = await blobs.get(blob_id)
        if blob is None or blob.expires_at_ms <= ctx.clock_ms():
            raise NotFoundError("blob not found")
        is_fetcher = await blobs.is_fetcher(blob_id, by.device_id)
        if not is_fetcher and blob.uploader_user_id != by.user_id:
            raise PermissionDenied("this device was not sent that blob")
    chunks = await ctx.blobs.open(blob_id)
    return BlobDownload(
        size=blob.size, chunks=_then_fetched(ctx, by, blob_id, chunks) if is_fetcher else chunks
    )


async def _then_fetched(
    ctx: ServerContext, by: AuthenticatedDevice, blob_id: str, chunks: AsyncIterator[bytes]
) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        yield chunk
    async with ctx.sessions() as session, session.begin():
        blobs = BlobRepository(session)
        blob = await blobs.get(blob_id, for_update=True)
        finished = (
            blob is not None and await blobs.remove_fetcher(blob_id, by.device_id) == 0 and blob.attached
        )
        if finished and blob_id in (await held_data(session)).blob_ids:
            finished = False  # evidence under a preservation hold: kept past its last fetch
        if finished:
            await blobs.delete(blob_id)
    if finished:
        await ctx.blobs.delete(blob_id)


async def sweep_expired_blobs(ctx: ServerContext, now_ms: int | None = None) -> int:
    """Deletes blobs past their TTL at `now_ms` (default: the server clock), fetched or not, except those a
    preservation hold keeps; returns how many."""
    now = ctx.clock_ms() if now_ms is None else now_ms
    async with ctx.sessions() as session, session.begin():
        blobs = BlobRepository(session)
        held = await held_data(session)
        expired = list(await blobs.expired(now, keep=held.blob_ids))
        for blob_id in expired:
            await blobs.delete(blob_id)
    for blob_id in expired:
        await ctx.blobs.delete(blob_id)
    return len(expired)


async def sweep_blob_leftovers(ctx: ServerContext, now_ms: int | None = None) -> int:
    """Deletes from the blob backend what crashed or abandoned transfers left: unfinished uploads (S3
    multipart uploads, database chunks, `.part` files) and stored blobs no blob row refers to, once
    untouched for `ABANDONED_AFTER_MS` before `now_ms` (default: the server clock); returns how many.
    A blob under a preservation hold keeps its row, so it is never a leftover."""
    now = ctx.clock_ms() if now_ms is None else now_ms

    async def referenced(blob_ids: Collection[str]) -> Collection[str]:
        async with ctx.sessions() as session:
            return await BlobRepository(session).existing(blob_ids)

    return await ctx.blobs.sweep_leftovers(now - ABANDONED_AFTER_MS, referenced)

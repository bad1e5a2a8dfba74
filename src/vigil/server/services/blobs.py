"""Encrypted attachment blobs: upload, access-checked download, deletion once fetched or expired."""

from __future__ import annotations

import asyncio
import secrets

from vigil.errors import NotFoundError, PermissionDenied, ValidationError
from vigil.protocol.wire import BlobUploaded
from vigil.server.context import ServerContext
from vigil.server.db.models import BlobRow
from vigil.server.db.repositories import BlobRepository
from vigil.server.services.accounts import AuthenticatedDevice

__all__ = ["download_blob", "sweep_expired_blobs", "upload_blob"]


async def upload_blob(ctx: ServerContext, by: AuthenticatedDevice, data: bytes) -> BlobUploaded:
    """Stores an encrypted blob under a fresh random id: the same bytes uploaded twice are two blobs.
    Raises ValidationError for an empty or oversized blob."""
    if not data:
        raise ValidationError("blob is empty")
    if len(data) > ctx.settings.max_blob_bytes:
        raise ValidationError(f"blob is larger than {ctx.settings.max_blob_bytes} bytes")
    blob_id = secrets.token_hex(16)
    await asyncio.to_thread(ctx.blobs.write, blob_id, data)
    now_ms = ctx.clock_ms()
    async with ctx.sessions() as session, session.begin():
        await BlobRepository(session).add(
            BlobRow(
                id=blob_id,
                uploader_device_id=by.device_id,
                uploader_user_id=by.user_id,
                size=len(data),
                created_at_ms=now_ms,
                expires_at_ms=now_ms + ctx.settings.blob_ttl_seconds * 1000,
            )
        )
    return BlobUploaded(blob_id=blob_id, size=len(data))


async def download_blob(ctx: ServerContext, by: AuthenticatedDevice, blob_id: str) -> bytes:
    """Returns the blob to its uploader or to a device it was sent to; once every recipient device has
    fetched it, it is deleted. Raises NotFoundError or PermissionDenied."""
    async with ctx.sessions() as session, session.begin():
        blobs = BlobRepository(session)
        blob = await blobs.get(blob_id)
        if blob is None or blob.expires_at_ms <= ctx.clock_ms():
            raise NotFoundError("blob not found")
        is_fetcher = await blobs.is_fetcher(blob_id, by.device_id)
        if not is_fetcher and blob.uploader_user_id != by.user_id:
            raise PermissionDenied("this device was not sent that blob")
        data = await asyncio.to_thread(ctx.blobs.read, blob_id)
        finished = is_fetcher and await blobs.remove_fetcher(blob_id, by.device_id) == 0 and blob.attached
        if finished:
            await blobs.delete(blob_id)
    if finished:
        await asyncio.to_thread(ctx.blobs.delete, blob_id)
    return data


async def sweep_expired_blobs(ctx: ServerContext) -> int:
    """Deletes blobs past their TTL, fetched or not; returns how many."""
    async with ctx.sessions() as session, session.begin():
        blobs = BlobRepository(session)
        expired = list(await blobs.expired(ctx.clock_ms()))
        for blob_id in expired:
            await blobs.delete(blob_id)
    for blob_id in expired:
        await asyncio.to_thread(ctx.blobs.delete, blob_id)
    return len(expired)

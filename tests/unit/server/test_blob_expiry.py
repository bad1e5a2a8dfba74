"""Blob lifecycle in the service layer on a real SQLite database: deleted once every recipient device
fetched it, or after the TTL whether fetched or not."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from vigil.errors import NotFoundError, PermissionDenied
from vigil.protocol.olm import DeviceAccount
from vigil.protocol.wire import RegisterAccountRequest
from vigil.server.context import ServerContext
from vigil.server.services import accounts, blobs
from vigil.server.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now_ms = 1_800_000_000_000

    def __call__(self) -> int:
        return self.now_ms


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_unfetched_blob_is_deleted_after_its_ttl(tmp_path: Path) -> None:
    clock = Clock()
    async with ServerContext.open(Settings(data_dir=tmp_path, blob_ttl_seconds=60), clock_ms=clock) as ctx:
        registered = await accounts.register_account(
            ctx,
            RegisterAccountRequest(
                username="alice", birth_date=dt.date(1990, 1, 1), device=DeviceAccount().device_keys()
            ),
        )
        other = await accounts.register_account(
            ctx,
            RegisterAccountRequest(
                username="mallory", birth_date=dt.date(1990, 1, 1), device=DeviceAccount().device_keys()
            ),
        )
        alice = await accounts.authenticate(ctx, registered.credential)
        mallory = await accounts.authenticate(ctx, other.credential)
        uploaded = await blobs.upload_blob(ctx, alice, _chunks(b"ciphertext bytes"))
        download = await blobs.download_blob(ctx, alice, uploaded.blob_id)
        assert download.size == 16 and b"".join([c async for c in download.chunks]) == b"ciphertext bytes"
        with pytest.raises(PermissionDenied):
            await blobs.download_blob(ctx, mallory, uploaded.blob_id)
        clock.now_ms += 59_000
        assert await blobs.sweep_expired_blobs(ctx) == 0
        clock.now_ms += 2_000
        assert await blobs.sweep_expired_blobs(ctx) == 1
        with pytest.raises(NotFoundError):
            await blobs.download_blob(ctx, alice, uploaded.blob_id)
        assert [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()] == []

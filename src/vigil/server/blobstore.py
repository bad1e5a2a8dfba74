"""Where encrypted attachment blobs live: the `BlobBackend` interface and the local-disk backend.

Every backend streams: `receive` consumes an async iterator of chunks and `open` yields one, so no blob
is ever held whole in memory. Backends (chosen by `VIGIL_BLOB_BACKEND`): `DiskBlobStore` here (one
node), `DatabaseBlobStore` in `blobstore_database` (chunked rows in the Vigil database) and
`S3BlobStore` in `blobstore_s3` (S3-compatible object storage); the last two are shared by every node.
A backend's `receive` leaves nothing behind under the blob's id when it fails (a disconnect, too large,
no room), and the blob's database row is only written after `receive` returned, so a half-written blob
is never referenced. What a crash leaves anyway (an unfinished upload, a blob whose row was deleted
just before the crash) `sweep_leftovers` removes once it is old enough to be surely abandoned."""

from __future__ import annotations

import asyncio
import errno
import os
import re
import shutil
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Collection
from pathlib import Path
from typing import BinaryIO, Protocol

from vigil.errors import NotFoundError, ValidationError
from vigil.server.capacity import InsufficientStorage, PayloadTooLarge

__all__ = [
    "READ_CHUNK_BYTES",
    "BlobBackend",
    "DiskBlobStore",
    "ReferencedBlobs",
    "SizeGuard",
    "check_blob_id",
]

_BLOB_ID = re.compile(r"^[a-f0-9]{32}$")
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
# Chunks are gathered up to this size before a write, so a stream of small chunks costs few thread hops.
_WRITE_BUFFER_BYTES = 1024 * 1024
READ_CHUNK_BYTES = 256 * 1024
# How many stored blobs a leftovers sweep asks the database about at once.
_LEFTOVER_BATCH = 500

ReferencedBlobs = Callable[[Collection[str]], Awaitable[Collection[str]]]
"""Which of these blob ids have a blob row (the database answers; the backend only stores bytes)."""


class BlobBackend(Protocol):
    async def receive(self, blob_id: str, chunks: AsyncIterable[bytes], *, max_bytes: int) -> int:
        """Streams `chunks` into the blob and returns its size. Raises PayloadTooLarge past `max_bytes`,
        ValidationError when empty, InsufficientStorage when the store is full; on any failure nothing
        is left under `blob_id`."""
        ...

    async def open(self, blob_id: str) -> AsyncIterator[bytes]:
        """The blob's bytes in chunks. Raises NotFoundError here, before any chunk, when it is gone."""
        ...

    async def delete(self, blob_id: str) -> None:
        """Deletes the blob; deleting a missing blob is not an error."""
        ...

    async def free_bytes(self) -> int | None:
        """Room left for blobs, or None when this node cannot measure it (shared remote storage)."""
        ...

    async def sweep_leftovers(self, before_ms: int, referenced: ReferencedBlobs) -> int:
        """Deletes what failed or interrupted transfers left and nothing refers to: unfinished uploads,
        and stored blobs without a blob row, untouched since `before_ms` (wall-clock ms). Returns how
        many it deleted."""
        ...


def check_blob_id(blob_id: str) -> str:
    if not _BLOB_ID.match(blob_id):
        raise ValidationError("blob id must be 32 lowercase hex characters")
    return blob_id


class SizeGuard:
    """Counts a blob's bytes as they arrive and refuses the one past `max_bytes`."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise PayloadTooLarge(f"the blob is larger than {self.max_bytes} bytes")

    def finish(self) -> int:
        if self.size == 0:
            raise ValidationError("blob is empty")
        return self.size


class DiskBlobStore:
    """Blobs as files under one node's data dir. Writes are atomic (temp file, fsync, rename) so a
    crash never leaves a half blob under a real name."""

    def __init__(self, root: Path) -> None:
        self._root = root
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, blob_id: str) -> Path:
        check_blob_id(blob_id)
        return self._root / blob_id[:2] / blob_id

    async def free_bytes(self) -> int:
        """Free space on the file system the blobs (and, usually, the database) live on."""
        return (await asyncio.to_thread(shutil.disk_usage, self._root)).free

    async def receive(self, blob_id: str, chunks: AsyncIterable[bytes], *, max_bytes: int) -> int:
        path = self._path(blob_id)
        temporary = path.with_suffix(".part")
        guard = SizeGuard(max_bytes)
        try:
            await asyncio.to_thread(path.parent.mkdir, exist_ok=True)
            handle = await asyncio.to_thread(open, temporary, "wb")
            try:
                buffer = bytearray()
                async for chunk in chunks:
                    guard.add(chunk)
                    buffer += chunk
                    if len(buffer) >= _WRITE_BUFFER_BYTES:
                        await asyncio.to_thread(handle.write, bytes(buffer))
                        buffer.clear()
                await asyncio.to_thread(_flush, handle, bytes(buffer))
            finally:
                await asyncio.to_thread(handle.close)
            size = guard.finish()
            await asyncio.to_thread(os.replace, temporary, path)
        except BaseException as error:
            temporary.unlink(missing_ok=True)
            _raise_if_disk_full(error)
            raise
        return size

    async def open(self, blob_id: str) -> AsyncIterator[bytes]:
        try:
            handle = await asyncio.to_thread(open, self._path(blob_id), "rb")
        except FileNotFoundError as error:
            raise NotFoundError("blob not found") from error
        return _read_file(handle)

    async def delete(self, blob_id: str) -> None:
        await asyncio.to_thread(self._path(blob_id).unlink, missing_ok=True)

    async def sweep_leftovers(self, before_ms: int, referenced: ReferencedBlobs) -> int:
        partial, complete = await asyncio.to_thread(self._old_files, before_ms / 1000)
        deleted = 0
        for path in partial:
            await asyncio.to_thread(path.unlink, missing_ok=True)
            deleted += 1
        for start in range(0, len(complete), _LEFTOVER_BATCH):
            batch = complete[start : start + _LEFTOVER_BATCH]
            kept = await referenced([path.name for path in batch])
            for path in batch:
                if path.name not in kept:
                    await asyncio.to_thread(path.unlink, missing_ok=True)
                    deleted += 1
        return deleted

    def _old_files(self, before_s: float) -> tuple[list[Path], list[Path]]:
        """Files last written before `before_s`: unfinished uploads (`.part`) and complete blobs."""
        partial, complete = [], []
        for path in self._root.glob("*/*"):
            try:
                if path.stat().st_mtime >= before_s:
                    continue
            except FileNotFoundError:
                continue  # deleted meanwhile
            if path.suffix == ".part":
                partial.append(path)
            elif _BLOB_ID.match(path.name):
                complete.append(path)
        return partial, complete


async def _read_file(handle: BinaryIO) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(handle.read, READ_CHUNK_BYTES):
            yield chunk
    finally:
        await asyncio.to_thread(handle.close)


def _flush(handle: BinaryIO, rest: bytes) -> None:
    handle.write(rest)
    handle.flush()
    os.fsync(handle.fileno())


def _raise_if_disk_full(error: BaseException) -> None:
    if isinstance(error, OSError) and error.errno in _DISK_FULL:
        raise InsufficientStorage("the server has no room for blobs right now") from error

"""Encrypted attachment blobs on local disk. Writes are atomic (temp file, fsync, rename) so a crash
never leaves a half blob under a real name, and a write that fails for any reason (the client went
away, the body was too large or too slow, the disk is full) deletes its temporary file."""

from __future__ import annotations

import asyncio
import errno
import os
import re
import shutil
from collections.abc import AsyncIterable
from pathlib import Path
from typing import BinaryIO

from vigil.errors import NotFoundError, ValidationError
from vigil.server.capacity import InsufficientStorage, PayloadTooLarge

__all__ = ["BlobStore"]

_BLOB_ID = re.compile(r"^[a-f0-9]{32}$")
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
# Chunks are gathered up to this size before a write, so a stream of small chunks costs few thread hops.
_WRITE_BUFFER_BYTES = 1024 * 1024


class BlobStore:
    def __init__(self, root: Path) -> None:
        self._root = root
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, blob_id: str) -> Path:
        if not _BLOB_ID.match(blob_id):
            raise ValidationError("blob id must be 32 lowercase hex characters")
        return self._root / blob_id[:2] / blob_id

    def free_bytes(self) -> int:
        """Free space on the file system the blobs (and, usually, the database) live on."""
        return shutil.disk_usage(self._root).free

    async def receive(self, blob_id: str, chunks: AsyncIterable[bytes], *, max_bytes: int) -> int:
        """Streams `chunks` into the blob and returns its size. Raises PayloadTooLarge past `max_bytes`,
        ValidationError when empty, InsufficientStorage when the disk is full; on these and on any other
        failure (a disconnect, a timeout, cancellation) the temporary file is deleted."""
        path = self._path(blob_id)
        temporary = path.with_suffix(".part")
        size = 0
        try:
            await asyncio.to_thread(path.parent.mkdir, exist_ok=True)
            handle = await asyncio.to_thread(open, temporary, "wb")
            try:
                buffer = bytearray()
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise PayloadTooLarge(f"the blob is larger than {max_bytes} bytes")
                    buffer += chunk
                    if len(buffer) >= _WRITE_BUFFER_BYTES:
                        await asyncio.to_thread(handle.write, bytes(buffer))
                        buffer.clear()
                await asyncio.to_thread(_flush, handle, bytes(buffer))
            finally:
                await asyncio.to_thread(handle.close)
            if size == 0:
                raise ValidationError("blob is empty")
            await asyncio.to_thread(os.replace, temporary, path)
        except BaseException as error:
            temporary.unlink(missing_ok=True)
            _raise_if_disk_full(error)
            raise
        return size

    def read(self, blob_id: str) -> bytes:
        """Raises NotFoundError if the blob is gone."""
        try:
            return self._path(blob_id).read_bytes()
        except FileNotFoundError as error:
            raise NotFoundError("blob not found") from error

    def delete(self, blob_id: str) -> None:
        self._path(blob_id).unlink(missing_ok=True)


def _flush(handle: BinaryIO, rest: bytes) -> None:
    handle.write(rest)
    handle.flush()
    os.fsync(handle.fileno())


def _raise_if_disk_full(error: BaseException) -> None:
    if isinstance(error, OSError) and error.errno in _DISK_FULL:
        raise InsufficientStorage("the server has no room for blobs right now") from error

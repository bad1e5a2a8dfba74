"""Encrypted attachment blobs on local disk. Writes are atomic (temp file, fsync, rename) so a crash
never leaves a half blob under a real name."""

from __future__ import annotations

import os
import re
from pathlib import Path

from vigil.errors import NotFoundError, ValidationError

__all__ = ["BlobStore"]

_BLOB_ID = re.compile(r"^[a-f0-9]{32}$")


class BlobStore:
    def __init__(self, root: Path) -> None:
        self._root = root
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, blob_id: str) -> Path:
        if not _BLOB_ID.match(blob_id):
            raise ValidationError("blob id must be 32 lowercase hex characters")
        return self._root / blob_id[:2] / blob_id

    def write(self, blob_id: str, data: bytes) -> None:
        path = self._path(blob_id)
        path.parent.mkdir(exist_ok=True)
        temporary = path.with_suffix(".part")
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)

    def read(self, blob_id: str) -> bytes:
        """Raises NotFoundError if the blob is gone."""
        try:
            return self._path(blob_id).read_bytes()
        except FileNotFoundError as error:
            raise NotFoundError("blob not found") from error

    def delete(self, blob_id: str) -> None:
        self._path(blob_id).unlink(missing_ok=True)

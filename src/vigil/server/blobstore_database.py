"""The database blob backend (`VIGIL_BLOB_BACKEND=postgres`): each blob is a run of `blob_chunks` rows
in the Vigil database, so every node sharing that database shares the blobs. Each chunk is written and
read in its own short transaction: a large blob never holds a transaction open for its whole transfer,
and never sits whole in memory."""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator, Callable

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vigil.errors import NotFoundError
from vigil.server.blobstore import READ_CHUNK_BYTES, ReferencedBlobs, SizeGuard, check_blob_id
from vigil.server.db.blobs import BlobChunkRow, BlobRepository

__all__ = ["DatabaseBlobStore"]


class DatabaseBlobStore:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        chunk_bytes: int = READ_CHUNK_BYTES,
        *,
        wall_clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self._sessions = sessions
        self._chunk_bytes = chunk_bytes
        self._wall_clock_ms = wall_clock_ms

    async def free_bytes(self) -> None:
        return None  # the database's disk is not this node's to measure

    async def receive(self, blob_id: str, chunks: AsyncIterable[bytes], *, max_bytes: int) -> int:
        check_blob_id(blob_id)
        guard = SizeGuard(max_bytes)
        seq = 0
        try:
            buffer = bytearray()
            async for chunk in chunks:
                guard.add(chunk)
                buffer += chunk
                while len(buffer) >= self._chunk_bytes:
                    await self._write(blob_id, seq, bytes(buffer[: self._chunk_bytes]))
                    del buffer[: self._chunk_bytes]
                    seq += 1
            size = guard.finish()
            if buffer:
                await self._write(blob_id, seq, bytes(buffer))
        except BaseException:
            await self.delete(blob_id)
            raise
        return size

    async def _write(self, blob_id: str, seq: int, data: bytes) -> None:
        async with self._sessions() as session, session.begin():
            session.add(
                BlobChunkRow(blob_id=blob_id, seq=seq, data=data, created_at_ms=self._wall_clock_ms())
            )

    async def _read(self, blob_id: str, seq: int) -> bytes | None:
        async with self._sessions() as session:
            return await session.scalar(
                select(BlobChunkRow.data).where(BlobChunkRow.blob_id == blob_id, BlobChunkRow.seq == seq)
            )

    async def open(self, blob_id: str) -> AsyncIterator[bytes]:
        first = await self._read(check_blob_id(blob_id), 0)
        if first is None:
            raise NotFoundError("blob not found")
        return self._chunks(blob_id, first)

    async def _chunks(self, blob_id: str, first: bytes) -> AsyncIterator[bytes]:
        yield first
        seq = 1
        while (chunk := await self._read(blob_id, seq)) is not None:
            yield chunk
            seq += 1

    async def delete(self, blob_id: str) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(delete(BlobChunkRow).where(BlobChunkRow.blob_id == check_blob_id(blob_id)))

    async def sweep_leftovers(self, before_ms: int, referenced: ReferencedBlobs) -> int:
        # The chunks and the blob rows share a database: one query finds the unreferenced ones.
        deleted = 0
        while True:
            async with self._sessions() as session, session.begin():
                blobs = BlobRepository(session)
                abandoned = await blobs.abandoned_chunk_blob_ids(before_ms)
                if abandoned:
                    await blobs.delete_chunks(abandoned)
            deleted += len(abandoned)
            if not abandoned:
                return deleted

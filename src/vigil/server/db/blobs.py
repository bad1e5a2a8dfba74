"""Uploaded (encrypted) attachments and the devices still due to fetch each one."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, LargeBinary, String, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from vigil.server.db.base import Base

__all__ = ["BlobChunkRow", "BlobFetcherRow", "BlobRepository", "BlobRow"]


class BlobRow(Base):
    """An encrypted attachment blob (bytes on disk under the data dir, named by `id`)."""

    __tablename__ = "blobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    uploader_device_id: Mapped[str] = mapped_column(String(64))
    uploader_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    size: Mapped[int] = mapped_column(BigInteger)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    expires_at_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    attached: Mapped[bool] = mapped_column(Boolean, default=False)


class BlobFetcherRow(Base):
    """A device that may still fetch a blob; when none remain, the blob is deleted."""

    __tablename__ = "blob_fetchers"

    blob_id: Mapped[str] = mapped_column(ForeignKey("blobs.id", ondelete="CASCADE"), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)


class BlobChunkRow(Base):
    """One piece of a blob's ciphertext, for the database blob backend (`VIGIL_BLOB_BACKEND=postgres`).
    Written before the blob's `blobs` row exists, so it has no foreign key to it."""

    __tablename__ = "blob_chunks"

    blob_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at_ms: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class BlobRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, blob_id: str, *, for_update: bool = False) -> BlobRow | None:
        """`for_update` locks the row (PostgreSQL) so concurrent last fetches agree on who deletes it."""
        return await self._session.get(BlobRow, blob_id, with_for_update=for_update)

    async def add(self, row: BlobRow) -> None:
        self._session.add(row)
        await self._session.flush()

    async def add_fetchers(self, blob_id: str, device_ids: Sequence[str]) -> None:
        self._session.add_all([BlobFetcherRow(blob_id=blob_id, device_id=d) for d in device_ids])
        await self._session.flush()

    async def is_fetcher(self, blob_id: str, device_id: str) -> bool:
        return await self._session.get(BlobFetcherRow, (blob_id, device_id)) is not None

    async def remove_fetcher(self, blob_id: str, device_id: str) -> int:
        """Removes the device from the blob's fetchers; returns how many fetchers remain."""
        await self._session.execute(
            delete(BlobFetcherRow).where(
                BlobFetcherRow.blob_id == blob_id, BlobFetcherRow.device_id == device_id
            )
        )
        remaining = await self._session.scalar(
            select(func.count()).select_from(BlobFetcherRow).where(BlobFetcherRow.blob_id == blob_id)
        )
        return int(remaining or 0)

    async def delete(self, blob_id: str) -> None:
        await self._session.execute(delete(BlobFetcherRow).where(BlobFetcherRow.blob_id == blob_id))
        await self._session.execute(delete(BlobRow).where(BlobRow.id == blob_id))

    async def stored_bytes(self, uploader_user_id: int, now_ms: int) -> int:
        """Bytes of the account's blobs still kept: not fetched by every recipient yet, not expired."""
        total = await self._session.scalar(
            select(func.coalesce(func.sum(BlobRow.size), 0)).where(
                BlobRow.uploader_user_id == uploader_user_id, BlobRow.expires_at_ms > now_ms
            )
        )
        return int(total or 0)

    async def existing(self, blob_ids: Collection[str]) -> set[str]:
        """Which of `blob_ids` have a blob row."""
        if not blob_ids:
            return set()
        return set((await self._session.scalars(select(BlobRow.id).where(BlobRow.id.in_(blob_ids)))).all())

    async def abandoned_chunk_blob_ids(self, before_ms: int, limit: int = 500) -> Sequence[str]:
        """Blob ids whose chunks have no blob row and none written since `before_ms`: an upload that
        failed without cleaning up, or a blob whose row went while its chunks stayed (a crash between)."""
        query = (
            select(BlobChunkRow.blob_id)
            .where(BlobChunkRow.blob_id.not_in(select(BlobRow.id)))
            .group_by(BlobChunkRow.blob_id)
            .having(func.max(BlobChunkRow.created_at_ms) < before_ms)
            .limit(limit)
        )
        return (await self._session.scalars(query)).all()

    async def delete_chunks(self, blob_ids: Collection[str]) -> int:
        result = await self._session.execute(delete(BlobChunkRow).where(BlobChunkRow.blob_id.in_(blob_ids)))
        return int(getattr(result, "rowcount", 0) or 0)

    async def expired(self, now_ms: int, limit: int = 500, *, keep: Collection[str] = ()) -> Sequence[str]:
        """Blobs past their TTL, except `keep` (held)."""
        query = select(BlobRow.id).where(BlobRow.expires_at_ms <= now_ms)
        if keep:
            query = query.where(BlobRow.id.not_in(keep))
        rows = await self._session.scalars(query.limit(limit))
        return rows.all()

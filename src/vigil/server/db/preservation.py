"""Preservation holds (18 U.S.C. 2258A(h)): a finished CyberTipline report asks the provider to keep the
reported contents and related data for one year. A hold names the case, the reported account and the
blobs the case's evidence refers to; retention sweeps skip everything a hold in force covers."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from vigil.server.db.accounts import UserRow
from vigil.server.db.base import Base

__all__ = ["PreservationHoldRow", "PreservationRepository"]


class PreservationHoldRow(Base):
    """In force until released (`released_at_ms`); an admin may release it only after `hold_until_ms`."""

    __tablename__ = "preservation_holds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    subject_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    filing_id: Mapped[int | None] = mapped_column(ForeignKey("cybertip_filings.id"), nullable=True)
    reason: Mapped[str] = mapped_column(String(200))
    blob_ids: Mapped[str] = mapped_column(Text, default="")  # comma-separated ids of blobs the evidence names
    created_by: Mapped[str] = mapped_column(String(80))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    hold_until_ms: Mapped[int] = mapped_column(BigInteger)
    released_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    released_by: Mapped[str | None] = mapped_column(String(80), nullable=True)


class PreservationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, row: PreservationHoldRow) -> PreservationHoldRow:
        self._session.add(row)
        await self._session.flush()
        return row

    async def get(self, hold_id: int) -> PreservationHoldRow | None:
        return await self._session.get(PreservationHoldRow, hold_id)

    async def all(self, limit: int = 500) -> Sequence[PreservationHoldRow]:
        """Newest first."""
        rows = await self._session.scalars(
            select(PreservationHoldRow).order_by(PreservationHoldRow.id.desc()).limit(limit)
        )
        return rows.all()

    async def usernames(self, user_ids: Collection[int]) -> Sequence[str]:
        """The names of held accounts (metadata events name accounts by username)."""
        rows = await self._session.scalars(select(UserRow.username).where(UserRow.id.in_(user_ids)))
        return rows.all()

    async def in_force(self) -> Sequence[PreservationHoldRow]:
        rows = await self._session.scalars(
            select(PreservationHoldRow).where(PreservationHoldRow.released_at_ms.is_(None))
        )
        return rows.all()

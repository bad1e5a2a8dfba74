"""What the server tells an account: plain notices of actions taken, and signed safety notices."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from vigil.server.db.base import Base

__all__ = ["NoticeRepository", "NoticeRow", "SafetyNoticeRow"]


class NoticeRow(Base):
    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(String(1000))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class SafetyNoticeRow(Base):
    """A signed notice for one account: the exact signed payload and its signature."""

    __tablename__ = "safety_notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    subject_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class NoticeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def add(self, row: NoticeRow) -> None:
        self._session.add(row)

    async def notices(self, user_id: int, after: int) -> Sequence[NoticeRow]:
        """The account's plain notices numbered above `after`, in order."""
        rows = await self._session.scalars(
            select(NoticeRow).where(NoticeRow.user_id == user_id, NoticeRow.id > after).order_by(NoticeRow.id)
        )
        return rows.all()

    async def add_safety_notice(self, row: SafetyNoticeRow) -> SafetyNoticeRow:
        """Adds and flushes (the signed body carries the row's id)."""
        self._session.add(row)
        await self._session.flush()
        return row

    async def safety_notices(self, user_id: int, after: int, limit: int = 200) -> Sequence[SafetyNoticeRow]:
        """The account's signed notices numbered above `after`, in order."""
        rows = await self._session.scalars(
            select(SafetyNoticeRow)
            .where(SafetyNoticeRow.user_id == user_id, SafetyNoticeRow.id > after)
            .order_by(SafetyNoticeRow.id)
            .limit(limit)
        )
        return rows.all()

    async def shown_safety_notice(
        self, user_ids: Collection[int], subject_user_id: int, kind: str
    ) -> set[int]:
        """Those of `user_ids` already shown a `kind` notice about `subject_user_id`, in one query."""
        if not user_ids:
            return set()
        found = await self._session.scalars(
            select(SafetyNoticeRow.user_id).where(
                SafetyNoticeRow.user_id.in_(list(user_ids)),
                SafetyNoticeRow.subject_user_id == subject_user_id,
                SafetyNoticeRow.kind == kind,
            )
        )
        return set(found.all())

    async def has_safety_notice(self, user_id: int, subject_user_id: int, kind: str) -> bool:
        """Whether the account was already shown a `kind` notice about `subject_user_id`."""
        found = await self._session.scalar(
            select(SafetyNoticeRow.id)
            .where(
                SafetyNoticeRow.user_id == user_id,
                SafetyNoticeRow.subject_user_id == subject_user_id,
                SafetyNoticeRow.kind == kind,
            )
            .limit(1)
        )
        return found is not None

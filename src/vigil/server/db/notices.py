"""What the server tells an account: plain notices of actions taken, and signed safety notices."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Table,
    bindparam,
    insert,
    select,
    update,
)
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

    async def add_unsigned_safety_notices(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Inserts notices given as column values (payload and signature empty: they carry the row's id,
        see `sign_safety_notices`) in one statement; returns their ids, in order."""
        table = cast(Table, SafetyNoticeRow.__table__)
        result = await self._session.execute(
            insert(table).returning(table.c.id, sort_by_parameter_order=True), list(rows)
        )
        return [int(notice_id) for notice_id in result.scalars().all()]

    async def sign_safety_notices(self, signed: Sequence[tuple[int, bytes, bytes]]) -> None:
        """Sets (id, payload, signature) of notices added by `add_unsigned_safety_notices`, in one
        executemany."""
        table = cast(Table, SafetyNoticeRow.__table__)
        await self._session.execute(
            update(table)
            .where(table.c.id == bindparam("notice_id"))
            .values(payload=bindparam("signed_payload"), signature=bindparam("signed_signature")),
            [{"notice_id": i, "signed_payload": p, "signed_signature": sig} for i, p, sig in signed],
        )

    async def safety_notices(self, user_id: int, after: int, limit: int = 200) -> Sequence[SafetyNoticeRow]:
        """The account's signed notices numbered above `after`, in order."""
        rows = await self._session.scalars(
            select(SafetyNoticeRow)
            .where(SafetyNoticeRow.user_id == user_id, SafetyNoticeRow.id > after)
            .order_by(SafetyNoticeRow.id)
            .limit(limit)
        )
        return rows.all()

    async def shown_safety_notices(
        self, pairs: Collection[tuple[int, int]], kind: str
    ) -> set[tuple[int, int]]:
        """Those of `pairs` (recipient id, subject id) where the recipient was already shown a `kind`
        notice about the subject, in one query."""
        if not pairs:
            return set()
        found = await self._session.execute(
            select(SafetyNoticeRow.user_id, SafetyNoticeRow.subject_user_id).where(
                SafetyNoticeRow.user_id.in_({recipient for recipient, _ in pairs}),
                SafetyNoticeRow.subject_user_id.in_({subject for _, subject in pairs}),
                SafetyNoticeRow.kind == kind,
            )
        )
        return {(int(r), int(s)) for r, s in found.all()} & set(pairs)

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

"""Persistent labels reviewers put on accounts (e.g. `repeat-spammer`), optionally expiring."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import BigInteger, ForeignKey, Integer, String, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from vigil.server.db.base import Base

__all__ = ["AccountLabelRow", "LabelRepository"]


class AccountLabelRow(Base):
    __tablename__ = "account_labels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    label: Mapped[str] = mapped_column(String(40))
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("reviewers.id"), nullable=True)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    expires_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class LabelRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def live(self, user_id: int, now_ms: int) -> Sequence[AccountLabelRow]:
        return (
            await self._session.scalars(
                select(AccountLabelRow)
                .where(
                    AccountLabelRow.user_id == user_id,
                    or_(AccountLabelRow.expires_at_ms.is_(None), AccountLabelRow.expires_at_ms > now_ms),
                )
                .order_by(AccountLabelRow.id)
            )
        ).all()

    async def get(self, label_id: int) -> AccountLabelRow | None:
        return await self._session.get(AccountLabelRow, label_id)

    def add(self, row: AccountLabelRow) -> None:
        self._session.add(row)

    async def delete(self, row: AccountLabelRow) -> None:
        await self._session.delete(row)

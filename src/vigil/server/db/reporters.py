"""Reporters a reviewer marked as reporting in bad faith (their later unverified claims rank low)."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import BigInteger, ForeignKey, Integer, String, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from vigil.server.db.accounts import UserRow
from vigil.server.db.base import Base

__all__ = ["BadFaithMarkRow", "BadFaithRepository"]


class BadFaithMarkRow(Base):
    """One account marked as reporting in bad faith: by which reviewer, from which case, when. The
    audit log keeps the history of marks and clears; this row is the current state."""

    __tablename__ = "bad_faith_reporters"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    marked_by_reviewer_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    case_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str] = mapped_column(String(500))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class BadFaithRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, user_id: int) -> BadFaithMarkRow | None:
        return await self._session.get(BadFaithMarkRow, user_id)

    def add(self, row: BadFaithMarkRow) -> None:
        self._session.add(row)

    async def remove(self, user_id: int) -> None:
        await self._session.execute(delete(BadFaithMarkRow).where(BadFaithMarkRow.user_id == user_id))

    async def marked_among(self, usernames: Collection[str]) -> set[str]:
        """Which of these accounts are marked."""
        if not usernames:
            return set()
        rows = await self._session.scalars(
            select(UserRow.username)
            .join(BadFaithMarkRow, BadFaithMarkRow.user_id == UserRow.id)
            .where(UserRow.username.in_(list(usernames)))
        )
        return set(rows.all())

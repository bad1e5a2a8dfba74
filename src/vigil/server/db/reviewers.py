"""Reviewer accounts of the trust & safety console and their signed-in sessions."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, LargeBinary, String, Text, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from vigil.server.db.base import Base

__all__ = ["ConsoleSessionRow", "ReviewerRepository", "ReviewerRow"]


class ReviewerRow(Base):
    __tablename__ = "reviewers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Comma-separated queue names the reviewer may work; empty means every queue.
    queues: Mapped[str] = mapped_column(String(200), default="", server_default="")
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class ConsoleSessionRow(Base):
    """A signed-in reviewer. Only the SHA-256 of the session cookie is stored."""

    __tablename__ = "console_sessions"

    token_sha256: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("reviewers.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    revealed: Mapped[str] = mapped_column(Text, default="")
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    expires_at_ms: Mapped[int] = mapped_column(BigInteger)


class ReviewerRepository:
    """Reviewer accounts and their console sessions (looked up by the SHA-256 of the session cookie)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, reviewer_id: int) -> ReviewerRow | None:
        return await self._session.get(ReviewerRow, reviewer_id)

    async def by_username(self, username: str) -> ReviewerRow | None:
        row: ReviewerRow | None = await self._session.scalar(
            select(ReviewerRow).where(ReviewerRow.username == username)
        )
        return row

    async def name_taken(self, username: str) -> bool:
        found = await self._session.scalar(select(ReviewerRow.id).where(ReviewerRow.username == username))
        return found is not None

    async def add(self, row: ReviewerRow) -> ReviewerRow:
        """Adds and flushes (the caller needs the reviewer's id)."""
        self._session.add(row)
        await self._session.flush()
        return row

    async def all(self) -> Sequence[ReviewerRow]:
        """Every reviewer, in name order."""
        return (await self._session.scalars(select(ReviewerRow).order_by(ReviewerRow.username))).all()

    def add_session(self, row: ConsoleSessionRow) -> None:
        self._session.add(row)

    async def console_session(self, token_sha256: bytes) -> ConsoleSessionRow | None:
        return await self._session.get(ConsoleSessionRow, token_sha256)

    async def console_session_with_reviewer(
        self, token_sha256: bytes
    ) -> tuple[ConsoleSessionRow, ReviewerRow] | None:
        found = (
            await self._session.execute(
                select(ConsoleSessionRow, ReviewerRow)
                .join(ReviewerRow, ReviewerRow.id == ConsoleSessionRow.reviewer_id)
                .where(ConsoleSessionRow.token_sha256 == token_sha256)
            )
        ).one_or_none()
        return None if found is None else (found[0], found[1])

    async def end_session(self, token_sha256: bytes) -> None:
        await self._session.execute(
            delete(ConsoleSessionRow).where(ConsoleSessionRow.token_sha256 == token_sha256)
        )

    async def end_sessions_of(self, reviewer_id: int) -> None:
        await self._session.execute(
            delete(ConsoleSessionRow).where(ConsoleSessionRow.reviewer_id == reviewer_id)
        )

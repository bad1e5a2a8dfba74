"""Minors' protective defaults between accounts: contact requests, connections, and blocks."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from vigil.protocol.contacts import ContactRequestState
from vigil.server.db.accounts import UserRow
from vigil.server.db.base import Base

__all__ = ["BlockRepository", "BlockRow", "ConnectionRow", "ContactRepository", "ContactRequestRow"]


class ContactRequestRow(Base):
    """Who asked whom, when, and the answer. No text, no media."""

    __tablename__ = "contact_requests"
    __table_args__ = (Index("ix_contact_requests_requester_created", "requester_user_id", "created_at_ms"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    requester_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    recipient_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    state: Mapped[str] = mapped_column(String(16))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    answered_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class ConnectionRow(Base):
    """An accepted connection, stored once with `low_user_id < high_user_id`."""

    __tablename__ = "connections"

    low_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    high_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class BlockRow(Base):
    __tablename__ = "blocks"

    blocker_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    blocked_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class BlockRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def exists(self, blocker: int, blocked: int) -> bool:
        key = {"blocker_user_id": blocker, "blocked_user_id": blocked}
        return await self._session.get(BlockRow, key) is not None

    async def blocked_by_any(self, blockers: Sequence[int], blocked: int) -> bool:
        """Whether any of `blockers` has blocked `blocked`, in one query."""
        if not blockers:
            return False
        found = await self._session.scalar(
            select(BlockRow.blocker_user_id)
            .where(BlockRow.blocked_user_id == blocked, BlockRow.blocker_user_id.in_(list(blockers)))
            .limit(1)
        )
        return found is not None

    async def add(self, blocker: int, blocked: int, now_ms: int) -> bool:
        """True when the block is new."""
        if await self.exists(blocker, blocked):
            return False
        self._session.add(BlockRow(blocker_user_id=blocker, blocked_user_id=blocked, created_at_ms=now_ms))
        await self._session.flush()
        return True

    async def remove(self, blocker: int, blocked: int) -> None:
        await self._session.execute(
            delete(BlockRow).where(BlockRow.blocker_user_id == blocker, BlockRow.blocked_user_id == blocked)
        )

    async def blocked_by(self, blocker: int) -> Sequence[str]:
        rows = await self._session.scalars(
            select(UserRow.username)
            .join(BlockRow, BlockRow.blocked_user_id == UserRow.id)
            .where(BlockRow.blocker_user_id == blocker)
            .order_by(UserRow.username)
        )
        return rows.all()


_PENDING = ContactRequestState.PENDING.value


class ContactRepository:
    """Contact requests and the connections they lead to."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def request(self, request_id: int) -> ContactRequestRow | None:
        return await self._session.get(ContactRequestRow, request_id)

    async def add_request(self, row: ContactRequestRow) -> ContactRequestRow:
        """Adds and flushes (the caller answers with the request's id)."""
        self._session.add(row)
        await self._session.flush()
        return row

    async def pending(self, requester: int, recipient: int) -> ContactRequestRow | None:
        """The unanswered request from `requester` to `recipient`, if any."""
        row: ContactRequestRow | None = await self._session.scalar(
            select(ContactRequestRow).where(
                ContactRequestRow.requester_user_id == requester,
                ContactRequestRow.recipient_user_id == recipient,
                ContactRequestRow.state == _PENDING,
            )
        )
        return row

    async def sent_since(self, requester: int, since_ms: int) -> int:
        """How many requests `requester` sent after `since_ms`."""
        count = await self._session.scalar(
            select(func.count())
            .select_from(ContactRequestRow)
            .where(
                ContactRequestRow.requester_user_id == requester,
                ContactRequestRow.created_at_ms > since_ms,
            )
        )
        return int(count or 0)

    async def pending_to(self, recipient: int, limit: int) -> Sequence[ContactRequestRow]:
        """Unanswered requests to `recipient`, oldest first."""
        rows = await self._session.scalars(
            select(ContactRequestRow)
            .where(ContactRequestRow.recipient_user_id == recipient, ContactRequestRow.state == _PENDING)
            .order_by(ContactRequestRow.id)
            .limit(limit)
        )
        return rows.all()

    async def sent_by(self, requester: int, limit: int) -> Sequence[ContactRequestRow]:
        """`requester`'s requests in any state, newest first."""
        rows = await self._session.scalars(
            select(ContactRequestRow)
            .where(ContactRequestRow.requester_user_id == requester)
            .order_by(ContactRequestRow.id.desc())
            .limit(limit)
        )
        return rows.all()

    async def pending_before(self, before_ms: int) -> Sequence[ContactRequestRow]:
        """Unanswered requests sent before `before_ms` (to expire them)."""
        rows = await self._session.scalars(
            select(ContactRequestRow).where(
                ContactRequestRow.state == _PENDING, ContactRequestRow.created_at_ms < before_ms
            )
        )
        return rows.all()

    async def connected(self, a: int, b: int) -> bool:
        low, high = min(a, b), max(a, b)
        key = {"low_user_id": low, "high_user_id": high}
        return (await self._session.get(ConnectionRow, key)) is not None

    async def connected_among(self, user_id: int, others: Collection[int]) -> set[int]:
        """Which of `others` the user is connected to, in one query."""
        if not others:
            return set()
        rows = await self._session.execute(
            select(ConnectionRow.low_user_id, ConnectionRow.high_user_id).where(
                ((ConnectionRow.low_user_id == user_id) & ConnectionRow.high_user_id.in_(others))
                | ((ConnectionRow.high_user_id == user_id) & ConnectionRow.low_user_id.in_(others))
            )
        )
        return {high if low == user_id else low for low, high in rows.all()}

    async def connections_before(
        self, before_ms: int, *, since_ms: int | None = None
    ) -> Sequence[tuple[int, int, int]]:
        """(low user id, high user id, created at) of every connection made before `before_ms` (and, given
        `since_ms`, not before that)."""
        query = select(
            ConnectionRow.low_user_id, ConnectionRow.high_user_id, ConnectionRow.created_at_ms
        ).where(ConnectionRow.created_at_ms < before_ms)
        if since_ms is not None:
            query = query.where(ConnectionRow.created_at_ms >= since_ms)
        rows = await self._session.execute(query)
        return [(low, high, at) for low, high, at in rows.all()]

    def connect(self, a: int, b: int, now_ms: int) -> None:
        """Records the connection of `a` and `b` (who are not connected yet)."""
        low, high = min(a, b), max(a, b)
        self._session.add(ConnectionRow(low_user_id=low, high_user_id=high, created_at_ms=now_ms))

    async def contacts_of(self, user_id: int) -> Sequence[str]:
        """The usernames `user_id` is connected to, in name order."""
        rows = await self._session.scalars(
            select(UserRow.username)
            .join(
                ConnectionRow,
                or_(
                    (ConnectionRow.low_user_id == user_id) & (ConnectionRow.high_user_id == UserRow.id),
                    (ConnectionRow.high_user_id == user_id) & (ConnectionRow.low_user_id == UserRow.id),
                ),
            )
            .order_by(UserRow.username)
        )
        return rows.all()

"""The append-only, hash-chained audit log of every console view and action."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import BigInteger, Integer, LargeBinary, String, Table, Text, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from vigil.server.db.base import Base

__all__ = ["AuditHeadRow", "AuditRepository", "AuditRow"]


class AuditRow(Base):
    """Append-only. `entry_hash = SHA-256(prev_hash || entry)`; ids run 1, 2, 3, ... without gaps."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts_ms: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(80), index=True)
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    entry_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditHeadRow(Base):
    """One row (id 1): the last sequence number and hash, updated in the appending transaction; it is
    also the lock that serialises appends. A truncated tail no longer matches it."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def take_seqs(self, count: int) -> tuple[int, bytes] | None:
        """Advances the head's sequence number by `count` (locking the head row until the transaction
        ends, which serialises appends) and returns the first of the numbers taken with the previous
        entry's hash; None when the head row is missing."""
        head = (
            await self._session.execute(
                update(AuditHeadRow)
                .where(AuditHeadRow.id == 1)
                .values(seq=AuditHeadRow.seq + count)
                .returning(AuditHeadRow.seq, AuditHeadRow.last_hash)
            )
        ).one_or_none()
        return None if head is None else (int(head[0]) - count + 1, bytes(head[1]))

    async def append_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Inserts the entries numbered by `take_seqs` (column values, in order; one multi-row insert)
        and moves the head's hash to the last."""
        await self._session.execute(insert(cast(Table, AuditRow.__table__)), list(rows))
        await self._session.execute(
            update(AuditHeadRow).where(AuditHeadRow.id == 1).values(last_hash=rows[-1]["entry_hash"])
        )

    async def for_target(self, target: str, limit: int) -> list[AuditRow]:
        """Newest first."""
        rows = await self._session.scalars(
            select(AuditRow).where(AuditRow.target == target).order_by(AuditRow.id.desc()).limit(limit)
        )
        return list(rows.all())

    async def with_action(self, action: str, target: str, limit: int = 1000) -> list[AuditRow]:
        """Entries of one action about one target, oldest first."""
        rows = await self._session.scalars(
            select(AuditRow)
            .where(AuditRow.action == action, AuditRow.target == target)
            .order_by(AuditRow.id)
            .limit(limit)
        )
        return list(rows.all())

    async def recent(self, limit: int) -> list[AuditRow]:
        """Newest first."""
        rows = await self._session.scalars(select(AuditRow).order_by(AuditRow.id.desc()).limit(limit))
        return list(rows.all())

    async def after(self, last_id: int, limit: int) -> Sequence[AuditRow]:
        """Entries numbered above `last_id`, in order."""
        rows = await self._session.scalars(
            select(AuditRow).where(AuditRow.id > last_id).order_by(AuditRow.id).limit(limit)
        )
        return rows.all()

    async def head(self) -> AuditHeadRow | None:
        return await self._session.get(AuditHeadRow, 1)

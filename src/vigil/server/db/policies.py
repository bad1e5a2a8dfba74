"""The policy list every review decision cites (admin-managed)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import BigInteger, Boolean, Integer, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from vigil.server.db.base import Base

__all__ = ["PolicyRepository", "PolicyRow"]


class PolicyRow(Base):
    __tablename__ = "policies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class PolicyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, policy_id: int) -> PolicyRow | None:
        return await self._session.get(PolicyRow, policy_id)

    async def by_code(self, code: str) -> PolicyRow | None:
        row: PolicyRow | None = await self._session.scalar(select(PolicyRow).where(PolicyRow.code == code))
        return row

    async def all(self) -> Sequence[PolicyRow]:
        return (await self._session.scalars(select(PolicyRow).order_by(PolicyRow.code))).all()

    async def add(self, row: PolicyRow) -> PolicyRow:
        self._session.add(row)
        await self._session.flush()
        return row

"""Appeals: an account asks once, per action taken on it, for the action to be reviewed again."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import BigInteger, ForeignKey, Integer, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from vigil.server.db.base import Base

__all__ = ["AppealRepository", "AppealRow"]


class AppealRow(Base):
    __tablename__ = "appeals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # Unique: one appeal per action, enforced by the database against two appeals sent at once.
    account_action_id: Mapped[int] = mapped_column(ForeignKey("account_actions.id"), unique=True)
    action: Mapped[str] = mapped_column(String(16))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    state: Mapped[str] = mapped_column(String(16))  # pending | upheld | overturned
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    decided_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("reviewers.id"), nullable=True)
    policy_id: Mapped[int | None] = mapped_column(ForeignKey("policies.id"), nullable=True)


class AppealRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def for_action(self, account_action_id: int) -> AppealRow | None:
        return await self._session.scalar(
            select(AppealRow).where(AppealRow.account_action_id == account_action_id)
        )

    async def for_case(self, case_id: int) -> AppealRow | None:
        return await self._session.scalar(select(AppealRow).where(AppealRow.case_id == case_id))

    async def add(self, row: AppealRow) -> AppealRow:
        self._session.add(row)
        await self._session.flush()
        return row

    async def decided(self) -> Sequence[AppealRow]:
        return (
            await self._session.scalars(select(AppealRow).where(AppealRow.decided_at_ms.is_not(None)))
        ).all()

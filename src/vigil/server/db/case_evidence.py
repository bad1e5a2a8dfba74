"""Case evidence written by reviewers and the risk layer (action notes, risk-case metadata timelines),
sealed under a per-case key. The audit log references these rows by id instead of copying them, so
erasing a case's evidence (its rows and its key) leaves the hash chain intact.

A case key is random, stored wrapped (AES-256-GCM) under the report key; deleting it makes whatever was
sealed under it unreadable, wherever a copy survived."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from vigil.server.db.base import Base

__all__ = ["CaseEvidenceRepository", "CaseEvidenceRow", "CaseKeyRow"]


class CaseKeyRow(Base):
    __tablename__ = "case_keys"

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class CaseEvidenceRow(Base):
    __tablename__ = "case_evidence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))  # vigil.server.services.case_evidence.EvidenceKind
    author: Mapped[str] = mapped_column(String(80))
    body_enc: Mapped[bytes] = mapped_column(LargeBinary)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class CaseEvidenceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def key(self, case_id: int) -> CaseKeyRow | None:
        return await self._session.get(CaseKeyRow, case_id)

    async def add_key(self, row: CaseKeyRow) -> None:
        self._session.add(row)
        await self._session.flush()

    async def add(self, row: CaseEvidenceRow) -> CaseEvidenceRow:
        self._session.add(row)
        await self._session.flush()
        return row

    async def of_case(self, case_id: int) -> Sequence[CaseEvidenceRow]:
        rows = await self._session.scalars(
            select(CaseEvidenceRow).where(CaseEvidenceRow.case_id == case_id).order_by(CaseEvidenceRow.id)
        )
        return rows.all()

    async def delete_item(self, evidence_id: int) -> int:
        """Deletes one evidence row (the case key stays for the rest); returns 1, or 0 if it was gone."""
        result = await self._session.execute(delete(CaseEvidenceRow).where(CaseEvidenceRow.id == evidence_id))
        return int(getattr(result, "rowcount", 0) or 0)

    async def erase(self, case_id: int) -> int:
        """Deletes the case's evidence rows and its key; returns how many rows."""
        result = await self._session.execute(
            delete(CaseEvidenceRow).where(CaseEvidenceRow.case_id == case_id)
        )
        await self._session.execute(delete(CaseKeyRow).where(CaseKeyRow.case_id == case_id))
        return int(getattr(result, "rowcount", 0) or 0)

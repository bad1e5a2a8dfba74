"""CyberTipline filings (issue 9): one row per report filed (or attempted) for a case, one row per file in
it, and the per-case lease that keeps two filers (console, CLI, two workers) from filing one case at once.

The report document is stored sealed (`report_enc`, see `vigil.server.services.evidence`); file rows hold
hashes, classification and NCMEC's file id, never bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    delete,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from vigil.server.db.base import Base

__all__ = [
    "CyberTipFileRow",
    "CyberTipFilingRepository",
    "CyberTipFilingRow",
    "CyberTipLeaseRow",
]


class CyberTipFilingRow(Base):
    """One CyberTipline report. `state`: draft → submitted → uploading → finished | retracted | failed |
    outcome-unknown (`vigil.server.services.cybertip_filing.FilingState`). `ncmec_report_id` is committed on
    its own as soon as `/submit` answers, so a crash afterwards leaves a report that recovery can find."""

    __tablename__ = "cybertip_filings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    subject_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    state: Mapped[str] = mapped_column(String(24), index=True)
    incident_type: Mapped[str] = mapped_column(String(100))
    base_url: Mapped[str] = mapped_column(String(255))
    is_test: Mapped[bool] = mapped_column(Boolean)
    report_enc: Mapped[bytes] = mapped_column(LargeBinary)  # the sealed <report> document sent to /submit
    ncmec_report_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    ncmec_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    ncmec_description: Mapped[str | None] = mapped_column(String(500), nullable=True)
    ncmec_request_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # HTTP attempts, every endpoint
    retries: Mapped[int] = mapped_column(Integer, default=0)  # of those, repeats after a 5xx or timeout
    recoveries: Mapped[int] = mapped_column(Integer, default=0)  # times crash recovery took it over
    filed_by: Mapped[str] = mapped_column(String(80))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)
    submitted_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    finished_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class CyberTipFileRow(Base):
    """One file of a filing. `source` is "report_item" or "image_match", `source_id` that row's id.
    `ncmec_file_id` is committed right after `/upload` answers; `details_sent` after `/fileinfo`."""

    __tablename__ = "cybertip_filing_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    filing_id: Mapped[int] = mapped_column(ForeignKey("cybertip_filings.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16))
    source_id: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(255))
    mime: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    md5: Mapped[str] = mapped_column(String(32))
    pdq: Mapped[str | None] = mapped_column(String(64), nullable=True)
    classification: Mapped[str | None] = mapped_column(String(4), nullable=True)
    annotations: Mapped[str] = mapped_column(String(400), default="")  # comma-separated FileAnnotations
    viewed_by_esp: Mapped[bool] = mapped_column(Boolean)
    publicly_available: Mapped[bool] = mapped_column(Boolean, default=False)
    uploaded_to_esp_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    additional_info: Mapped[str] = mapped_column(Text, default="")  # match facts, verification (no content)
    ncmec_file_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    uploaded_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    details_sent: Mapped[bool] = mapped_column(Boolean, default=False)


class CyberTipLeaseRow(Base):
    """Who is filing a case right now, until when. Taken atomically (`take_lease`), renewed at each step,
    released at the end; a lease that ran out means its holder died, and recovery may take over."""

    __tablename__ = "cybertip_leases"

    case_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    owner: Mapped[str] = mapped_column(String(64))
    until_ms: Mapped[int] = mapped_column(BigInteger)


class CyberTipFilingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, filing_id: int) -> CyberTipFilingRow | None:
        return await self._session.get(CyberTipFilingRow, filing_id)

    async def add(self, row: CyberTipFilingRow) -> CyberTipFilingRow:
        self._session.add(row)
        await self._session.flush()
        return row

    async def add_files(self, rows: Sequence[CyberTipFileRow]) -> None:
        self._session.add_all(rows)
        await self._session.flush()

    async def files_of(self, filing_id: int) -> Sequence[CyberTipFileRow]:
        rows = await self._session.scalars(
            select(CyberTipFileRow)
            .where(CyberTipFileRow.filing_id == filing_id)
            .order_by(CyberTipFileRow.position)
        )
        return rows.all()

    async def file(self, file_row_id: int) -> CyberTipFileRow | None:
        return await self._session.get(CyberTipFileRow, file_row_id)

    async def of_case(self, case_id: int) -> Sequence[CyberTipFilingRow]:
        rows = await self._session.scalars(
            select(CyberTipFilingRow)
            .where(CyberTipFilingRow.case_id == case_id)
            .order_by(CyberTipFilingRow.id)
        )
        return rows.all()

    async def all(self, limit: int = 500) -> Sequence[CyberTipFilingRow]:
        """Newest first."""
        rows = await self._session.scalars(
            select(CyberTipFilingRow).order_by(CyberTipFilingRow.id.desc()).limit(limit)
        )
        return rows.all()

    async def in_states(self, states: Sequence[str]) -> Sequence[CyberTipFilingRow]:
        rows = await self._session.scalars(
            select(CyberTipFilingRow)
            .where(CyberTipFilingRow.state.in_(states))
            .order_by(CyberTipFilingRow.id)
        )
        return rows.all()

    async def finished_report_ids_about(self, subject_user_id: int) -> Sequence[int]:
        rows = await self._session.scalars(
            select(CyberTipFilingRow.ncmec_report_id).where(
                CyberTipFilingRow.subject_user_id == subject_user_id,
                CyberTipFilingRow.state == "finished",
                CyberTipFilingRow.ncmec_report_id.is_not(None),
            )
        )
        return [int(r) for r in rows.all() if r is not None]

    async def reported_sources(self, case_id: int) -> dict[tuple[str, int], tuple[int, int | None]]:
        """Files of the case's finished filings: (source, source id) -> (filing id, NCMEC report id)."""
        rows = await self._session.execute(
            select(
                CyberTipFileRow.source,
                CyberTipFileRow.source_id,
                CyberTipFilingRow.id,
                CyberTipFilingRow.ncmec_report_id,
            )
            .join(CyberTipFilingRow, CyberTipFilingRow.id == CyberTipFileRow.filing_id)
            .where(CyberTipFilingRow.case_id == case_id, CyberTipFilingRow.state == "finished")
        )
        return {(str(r[0]), int(r[1])): (int(r[2]), r[3]) for r in rows.all()}

    async def move_state(self, filing_id: int, expected: str, state: str) -> bool:
        """Compare-and-set: moves the filing from `expected` to `state` unless another filer moved it
        first (one atomic statement on every backend). Returns whether this call moved it."""
        result = await self._session.execute(
            update(CyberTipFilingRow)
            .where(CyberTipFilingRow.id == filing_id, CyberTipFilingRow.state == expected)
            .values(state=state)
            .returning(CyberTipFilingRow.id)
            .execution_options(synchronize_session=False)
        )
        return result.scalar_one_or_none() is not None

    # -- the lease -----------------------------------------------------------------------------------

    async def take_lease(self, case_id: int, owner: str, now_ms: int, until_ms: int) -> bool:
        """Takes (or renews, for the same owner) the case's lease unless another owner holds one that has
        not run out; one atomic statement on every backend. Returns whether `owner` holds it now."""
        dialect = self._session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = (
            insert(CyberTipLeaseRow)
            .values(case_id=case_id, owner=owner, until_ms=until_ms)
            .on_conflict_do_update(
                index_elements=[CyberTipLeaseRow.case_id],
                set_={"owner": owner, "until_ms": until_ms},
                where=(CyberTipLeaseRow.until_ms <= now_ms) | (CyberTipLeaseRow.owner == owner),
            )
            .returning(CyberTipLeaseRow.owner)
        )
        taken = (await self._session.execute(statement)).scalar_one_or_none()
        return taken == owner

    async def renew_lease(self, case_id: int, owner: str, until_ms: int) -> bool:
        """Extends the lease `owner` still holds (even one that ran out, as long as nobody took it over).
        Never takes a free lease: a filer that lost the case (another took it, and may have released it
        since) must stop, not pick the case up again halfway through its own, superseded filing."""
        result = await self._session.execute(
            update(CyberTipLeaseRow)
            .where(CyberTipLeaseRow.case_id == case_id, CyberTipLeaseRow.owner == owner)
            .values(until_ms=until_ms)
            .returning(CyberTipLeaseRow.owner)
        )
        return result.scalar_one_or_none() == owner

    async def release_lease(self, case_id: int, owner: str) -> None:
        await self._session.execute(
            delete(CyberTipLeaseRow).where(
                CyberTipLeaseRow.case_id == case_id, CyberTipLeaseRow.owner == owner
            )
        )

    async def lease(self, case_id: int) -> CyberTipLeaseRow | None:
        return await self._session.get(CyberTipLeaseRow, case_id)

    async def expire_lease(self, case_id: int, owner: str, now_ms: int) -> None:
        """Lets the lease run out now (recovery may take the filing over) without deleting who held it."""
        await self._session.execute(
            update(CyberTipLeaseRow)
            .where(CyberTipLeaseRow.case_id == case_id, CyberTipLeaseRow.owner == owner)
            .values(until_ms=now_ms)
        )

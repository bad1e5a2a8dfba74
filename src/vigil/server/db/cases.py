"""Reports, their items, and the cases reviewers work on (with notes).

Reported content is the only plaintext the server ever holds; it is stored here AES-GCM encrypted
(`*_enc` columns, see `vigil.server.services.evidence`) and deleted when its retention runs out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    LargeBinary,
    Select,
    String,
    and_,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from vigil.server.db.accounts import AccountActionRow, AccountStandingRow, DeviceRow, UserRow
from vigil.server.db.base import Base
from vigil.server.db.contacts import BlockRow
from vigil.server.db.messaging import MessageRow

__all__ = [
    "CLAIMABLE_STATES",
    "OPEN_STATES",
    "AccountFacts",
    "CaseNoteRow",
    "CaseRepository",
    "CaseRow",
    "QueueFilter",
    "ReportItemRow",
    "ReportRepository",
    "ReportRow",
]


class CaseRow(Base):
    """Everything reported about one account while the case is open."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    priority: Mapped[int] = mapped_column(Integer)
    top_reason: Mapped[str] = mapped_column(String(16))
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("reviewers.id"), nullable=True)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)
    queue: Mapped[str] = mapped_column(String(24), index=True, default="general", server_default="general")
    # A claim is an assignment that lapses: past this time another reviewer's "claim next" may take it.
    claim_expires_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    first_action_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    decided_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    decision_policy_id: Mapped[int | None] = mapped_column(ForeignKey("policies.id"), nullable=True)


class ReportRow(Base):
    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    reporter_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reported_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    reason: Mapped[str] = mapped_column(String(16))
    reporter_age_band: Mapped[str] = mapped_column(String(16))
    note_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    expires_at_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    # Set when a reviewer dismisses this report on its own (e.g. one of many duplicates about one item)
    # while the case stays open for the rest.
    dismissed_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    dismissed_by: Mapped[int | None] = mapped_column(ForeignKey("reviewers.id"), nullable=True)
    dismissed_policy_id: Mapped[int | None] = mapped_column(ForeignKey("policies.id"), nullable=True)


class ReportItemRow(Base):
    """One reported message. `content_enc` is the encrypted payload JSON; `attachment_enc` the
    encrypted attachment plaintext. Metadata columns hold what the server saw (or, unverified, what
    was claimed)."""

    __tablename__ = "report_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    message_id: Mapped[str] = mapped_column(String(64))
    sender: Mapped[str | None] = mapped_column(String(32), nullable=True)
    conversation: Mapped[str | None] = mapped_column(String(80), nullable=True)
    server_ts_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    kind: Mapped[str | None] = mapped_column(String(16), nullable=True)
    verified: Mapped[bool] = mapped_column(Boolean)
    verdict: Mapped[str] = mapped_column(String(200))
    content_enc: Mapped[bytes] = mapped_column(LargeBinary)
    attachment_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    attachment_mime: Mapped[str | None] = mapped_column(String(100), nullable=True)


class CaseNoteRow(Base):
    __tablename__ = "case_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("reviewers.id"))
    body_enc: Mapped[bytes] = mapped_column(LargeBinary)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


_Query = TypeVar("_Query", bound=Select)  # type: ignore[type-arg]

OPEN_STATES = ("open", "in_review", "escalated", "on_hold")
# States "claim next" takes cases from (held and escalated cases wait for a person).
CLAIMABLE_STATES = ("open", "in_review")


@dataclass(frozen=True, slots=True)
class QueueFilter:
    states: tuple[str, ...] = OPEN_STATES
    reason: str | None = None
    priority_at_least: int | None = None
    verified: bool | None = None
    assignee_id: int | None = None
    queues: tuple[str, ...] | None = None  # None: every queue
    sort: str = "urgency"  # urgency | oldest | newest
    offset: int = 0
    limit: int = 200


@dataclass(frozen=True, slots=True)
class AccountFacts:
    """The metadata timeline of an account: never content."""

    username: str
    age_band: str
    created_at_ms: int
    standing: str
    devices: int
    messages_sent: int
    messages_received: int
    reports_received: int
    blocks_received: int
    actions: list[tuple[int, str]]


def _filtered(query: _Query, where: QueueFilter) -> _Query:
    query = query.where(CaseRow.state.in_(where.states))
    if where.reason is not None:
        query = query.where(CaseRow.top_reason == where.reason)
    if where.priority_at_least is not None:
        query = query.where(CaseRow.priority >= where.priority_at_least)
    if where.verified is not None:
        query = query.where(CaseRow.verified == where.verified)
    if where.assignee_id is not None:
        query = query.where(CaseRow.assignee_id == where.assignee_id)
    if where.queues is not None:
        query = query.where(CaseRow.queue.in_(where.queues))
    return query


class CaseRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, case_id: int) -> CaseRow | None:
        return await self._session.get(CaseRow, case_id)

    async def open_case_about(self, user_id: int) -> CaseRow | None:
        return await self._session.scalar(
            select(CaseRow)
            .where(
                CaseRow.subject_user_id == user_id,
                CaseRow.state.in_(OPEN_STATES),
                CaseRow.queue != "appeals",  # an appeal is its own case; reports never join it
            )
            .order_by(CaseRow.id)
            .limit(1)
        )

    async def add(self, row: CaseRow) -> CaseRow:
        self._session.add(row)
        await self._session.flush()
        return row

    async def queue(self, where: QueueFilter) -> Sequence[tuple[CaseRow, str, int]]:
        """One page of cases with the subject's username and the number of reports, in `where.sort`
        order (most urgent first by default)."""
        reports = (
            select(ReportRow.case_id, func.count(ReportRow.id).label("n"))
            .group_by(ReportRow.case_id)
            .subquery()
        )
        query = _filtered(
            select(CaseRow, UserRow.username, func.coalesce(reports.c.n, 0))
            .join(UserRow, UserRow.id == CaseRow.subject_user_id)
            .outerjoin(reports, reports.c.case_id == CaseRow.id),
            where,
        )
        match where.sort:
            case "oldest":
                query = query.order_by(CaseRow.created_at_ms, CaseRow.id)
            case "newest":
                query = query.order_by(CaseRow.created_at_ms.desc(), CaseRow.id.desc())
            case _:
                query = query.order_by(CaseRow.priority.desc(), CaseRow.created_at_ms, CaseRow.id)
        rows = await self._session.execute(query.offset(where.offset).limit(where.limit))
        return [(row[0], row[1], int(row[2])) for row in rows.all()]

    async def count(self, where: QueueFilter) -> int:
        return int(await self._session.scalar(_filtered(select(func.count(CaseRow.id)), where)) or 0)

    async def claim_next(self, queue: str, reviewer_id: int, now_ms: int, until_ms: int) -> CaseRow | None:
        """Atomically claims the most urgent unclaimed case in `queue`. The conditional UPDATE re-checks
        "unclaimed" under the row lock (PostgreSQL) or the database write lock (SQLite), so two reviewers
        claiming at once never get the same case: the loser's UPDATE matches no row and it tries the next."""
        unclaimed = or_(
            CaseRow.assignee_id.is_(None),
            and_(CaseRow.claim_expires_at_ms.is_not(None), CaseRow.claim_expires_at_ms <= now_ms),
        )
        candidates = (
            await self._session.scalars(
                select(CaseRow.id)
                .where(CaseRow.queue == queue, CaseRow.state.in_(CLAIMABLE_STATES), unclaimed)
                .order_by(CaseRow.priority.desc(), CaseRow.created_at_ms, CaseRow.id)
                .limit(25)
            )
        ).all()
        for case_id in candidates:
            result = await self._session.execute(
                update(CaseRow)
                .where(CaseRow.id == case_id, CaseRow.state.in_(CLAIMABLE_STATES), unclaimed)
                .values(
                    assignee_id=reviewer_id,
                    claim_expires_at_ms=until_ms,
                    state="in_review",
                    updated_at_ms=now_ms,
                )
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) == 1:
                case = await self._session.get(CaseRow, case_id, populate_existing=True)
                return case
        return None

    async def reports_of(self, case_id: int) -> Sequence[tuple[ReportRow, str]]:
        rows = await self._session.execute(
            select(ReportRow, UserRow.username)
            .join(UserRow, UserRow.id == ReportRow.reporter_user_id)
            .where(ReportRow.case_id == case_id)
            .order_by(ReportRow.id)
        )
        return [(row[0], row[1]) for row in rows.all()]

    async def items_of(self, report_ids: Sequence[int]) -> Sequence[ReportItemRow]:
        if not report_ids:
            return []
        rows = await self._session.scalars(
            select(ReportItemRow)
            .where(ReportItemRow.report_id.in_(report_ids))
            .order_by(ReportItemRow.report_id, ReportItemRow.position)
        )
        return rows.all()

    async def item(self, item_id: int) -> tuple[ReportItemRow, ReportRow] | None:
        row = (
            await self._session.execute(
                select(ReportItemRow, ReportRow)
                .join(ReportRow, ReportRow.id == ReportItemRow.report_id)
                .where(ReportItemRow.id == item_id)
            )
        ).one_or_none()
        return None if row is None else (row[0], row[1])

    async def notes_of(self, case_id: int) -> Sequence[CaseNoteRow]:
        rows = await self._session.scalars(
            select(CaseNoteRow).where(CaseNoteRow.case_id == case_id).order_by(CaseNoteRow.id)
        )
        return rows.all()

    async def add_note(self, row: CaseNoteRow) -> None:
        self._session.add(row)
        await self._session.flush()

    async def account_facts(self, user: UserRow) -> AccountFacts:
        async def count(query: object) -> int:
            return int(await self._session.scalar(query) or 0)  # type: ignore[call-overload]

        standing = await self._session.get(AccountStandingRow, user.id)
        actions = await self._session.execute(
            select(AccountActionRow.created_at_ms, AccountActionRow.action)
            .where(AccountActionRow.user_id == user.id)
            .order_by(AccountActionRow.id)
        )
        return AccountFacts(
            username=user.username,
            age_band=user.age_band,
            created_at_ms=user.created_at_ms,
            standing=standing.standing if standing else "active",
            devices=await count(
                select(func.count()).select_from(DeviceRow).where(DeviceRow.user_id == user.id)
            ),
            messages_sent=await count(
                select(func.count()).select_from(MessageRow).where(MessageRow.sender_user_id == user.id)
            ),
            messages_received=await count(
                select(func.count()).select_from(MessageRow).where(MessageRow.conversation == user.username)
            ),
            reports_received=await count(
                select(func.count()).select_from(ReportRow).where(ReportRow.reported_user_id == user.id)
            ),
            blocks_received=await count(
                select(func.count()).select_from(BlockRow).where(BlockRow.blocked_user_id == user.id)
            ),
            actions=[(int(row[0]), str(row[1])) for row in actions.all()],
        )


class ReportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def move_to_case(self, source_case_id: int, target_case_id: int) -> int:
        """Moves every report of one case to another; returns how many moved."""
        result = await self._session.execute(
            update(ReportRow).where(ReportRow.case_id == source_case_id).values(case_id=target_case_id)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def add(self, row: ReportRow) -> ReportRow:
        self._session.add(row)
        await self._session.flush()
        return row

    async def add_items(self, rows: Sequence[ReportItemRow]) -> None:
        self._session.add_all(rows)
        await self._session.flush()

    async def expired(self, now_ms: int, limit: int = 500) -> Sequence[int]:
        """Reports past retention."""
        query = select(ReportRow.id).where(ReportRow.expires_at_ms <= now_ms)
        rows = await self._session.scalars(query.limit(limit))
        return rows.all()

    async def delete(self, report_ids: Sequence[int]) -> None:
        if report_ids:
            await self._session.execute(delete(ReportItemRow).where(ReportItemRow.report_id.in_(report_ids)))
            await self._session.execute(delete(ReportRow).where(ReportRow.id.in_(report_ids)))

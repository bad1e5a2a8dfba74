"""Preservation holds (18 U.S.C. 2258A(h)): a finished CyberTipline report asks the provider to keep the
reported contents and related data for one year. A hold names the case, the reported account, the blobs
the case's evidence refers to (pinned in place: retention skips them) and the case evidence item that
holds the sealed copy of everything else it keeps (`held_records`); the originals follow their own
retention."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Integer, Select, String, Text, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from vigil.protocol.group_wire import group_conversation
from vigil.server.db.base import Base
from vigil.server.db.cases import ReportItemRow, ReportRow
from vigil.server.db.contacts import ContactRequestRow
from vigil.server.db.groups import MembershipPeriodRow
from vigil.server.db.hashlists import ImageMatchCaseRow, VoucherRow
from vigil.server.db.messaging import MessageRow
from vigil.server.db.metadata import MetadataEventRow
from vigil.server.db.notices import SafetyNoticeRow

__all__ = ["NOT_PRESERVED", "PreservationHoldRow", "PreservationRepository"]

# The (table, column)s a preserved copy leaves out: end-to-end ciphertext is content, which a copy of
# metadata does not take (the server cannot read it; what a report discloses is in its sealed report items).
NOT_PRESERVED: frozenset[tuple[str, str]] = frozenset({(MessageRow.__tablename__, "shared_body")})


def _columns_of(row: Base) -> dict[str, Any]:
    table = row.__tablename__
    return {c.key: getattr(row, c.key) for c in row.__table__.columns if (table, c.key) not in NOT_PRESERVED}


class PreservationHoldRow(Base):
    """In force until released (`released_at_ms`); an admin may release it only after `hold_until_ms`."""

    __tablename__ = "preservation_holds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    subject_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    filing_id: Mapped[int | None] = mapped_column(ForeignKey("cybertip_filings.id"), nullable=True)
    reason: Mapped[str] = mapped_column(String(200))
    blob_ids: Mapped[str] = mapped_column(Text, default="")  # comma-separated ids of blobs the evidence names
    created_by: Mapped[str] = mapped_column(String(80))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    hold_until_ms: Mapped[int] = mapped_column(BigInteger)
    released_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    released_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    # The case evidence item (`case_evidence.id`) sealing the copy this hold keeps; erased on release.
    evidence_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class PreservationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, row: PreservationHoldRow) -> PreservationHoldRow:
        self._session.add(row)
        await self._session.flush()
        return row

    async def get(self, hold_id: int) -> PreservationHoldRow | None:
        return await self._session.get(PreservationHoldRow, hold_id)

    async def all(self, limit: int = 500) -> Sequence[PreservationHoldRow]:
        """Newest first."""
        rows = await self._session.scalars(
            select(PreservationHoldRow).order_by(PreservationHoldRow.id.desc()).limit(limit)
        )
        return rows.all()

    async def held_records(
        self, *, case_id: int, user_id: int, username: str, alias: str, log_resolution_ms: int
    ) -> dict[str, list[dict[str, Any]]]:
        """What a hold on `case_id` about account `user_id` copies into the case, by table: the case's
        reports and reported items; the account's group membership periods; the delivery records and
        metadata events of every message it sent or was sent (`username`: direct conversations name the
        peer; a group message reached it when it was a member at the server's timestamp, as report
        verification counts membership, both ends included) and of its other events (`alias` is its
        pseudonym: the log names accounts by it); contact requests either way, safety notices about it,
        its vouchers and image-match cases. `log_resolution_ms` is the metadata log's time resolution
        (its times are floored to it: a group's events in the second the account joined or left count).
        Metadata only: a group message's shared ciphertext is not kept (`NOT_PRESERVED`), as a direct
        message's per-device ciphertexts are not."""
        session = self._session
        reports = (await session.scalars(select(ReportRow).where(ReportRow.case_id == case_id))).all()
        report_ids = [r.id for r in reports]
        periods = (
            await session.scalars(select(MembershipPeriodRow).where(MembershipPeriodRow.user_id == user_id))
        ).all()
        received_in_groups = [
            (MessageRow.conversation == group_conversation(p.group_id))
            & (MessageRow.server_ts_ms >= p.joined_at_ms)
            & (true() if p.left_at_ms is None else MessageRow.server_ts_ms <= p.left_at_ms)
            for p in periods
        ]
        events_in_groups = [
            (MetadataEventRow.group_id == p.group_id)
            & (MetadataEventRow.at_ms >= p.joined_at_ms - p.joined_at_ms % log_resolution_ms)
            & (true() if p.left_at_ms is None else MetadataEventRow.at_ms <= p.left_at_ms)
            for p in periods
        ]
        queries: dict[str, Select[Any]] = {
            "report_items": select(ReportItemRow).where(ReportItemRow.report_id.in_(report_ids)),
            "metadata_events": select(MetadataEventRow)
            .where(or_(MetadataEventRow.actor == alias, MetadataEventRow.target == alias, *events_in_groups))
            .order_by(MetadataEventRow.id),
            "messages": select(MessageRow)
            .where(
                or_(
                    MessageRow.sender_user_id == user_id,
                    MessageRow.conversation == username,
                    *received_in_groups,
                )
            )
            .order_by(MessageRow.id),
            "contact_requests": select(ContactRequestRow).where(
                or_(
                    ContactRequestRow.requester_user_id == user_id,
                    ContactRequestRow.recipient_user_id == user_id,
                )
            ),
            "safety_notices": select(SafetyNoticeRow).where(SafetyNoticeRow.subject_user_id == user_id),
            "vouchers": select(VoucherRow).where(VoucherRow.user_id == user_id),
            "image_match_cases": select(ImageMatchCaseRow).where(
                ImageMatchCaseRow.subject_user_id == user_id
            ),
        }
        records = {"reports": [_columns_of(r) for r in reports]}
        records["membership_periods"] = [_columns_of(p) for p in periods]
        for table, query in queries.items():
            records[table] = [_columns_of(row) for row in (await session.scalars(query)).all()]
        return records

    async def in_force_for_case(self, case_id: int) -> Sequence[PreservationHoldRow]:
        rows = await self._session.scalars(
            select(PreservationHoldRow).where(
                PreservationHoldRow.case_id == case_id, PreservationHoldRow.released_at_ms.is_(None)
            )
        )
        return rows.all()

    async def in_force(self) -> Sequence[PreservationHoldRow]:
        rows = await self._session.scalars(
            select(PreservationHoldRow).where(PreservationHoldRow.released_at_ms.is_(None))
        )
        return rows.all()

"""Deletions the retention sweeps make (`vigil.server.services.retention`), one statement each, so every
rule in the data inventory (`vigil.server.db.inventory`) has exactly one place that enforces it.
Repositories never commit; every method returns how many rows it deleted."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Delete, delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.protocol.contacts import ContactRequestState
from vigil.server.db.cases import OPEN_STATES
from vigil.server.db.contacts import ContactRequestRow
from vigil.server.db.groups import MembershipPeriodRow
from vigil.server.db.hashlists import ImageMatchCaseRow, VoucherRow
from vigil.server.db.messaging import MessageRepository, MessageRow, QueueRow
from vigil.server.db.notices import NoticeRow, SafetyNoticeRow
from vigil.server.db.reviewers import ConsoleSessionRow

__all__ = ["RetentionRepository"]


class RetentionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def _count(self, statement: Delete) -> int:
        result: Any = await self._session.execute(statement.execution_options(synchronize_session=False))
        return int(getattr(result, "rowcount", 0) or 0)

    async def delete_answered_contact_requests(self, answered_before_ms: int) -> int:
        """Answered (accepted, ignored or blocked) requests answered before the cutoff."""
        return await self._count(
            delete(ContactRequestRow).where(
                ContactRequestRow.state != ContactRequestState.PENDING.value,
                ContactRequestRow.answered_at_ms < answered_before_ms,
            )
        )

    async def delete_expired_console_sessions(self, now_ms: int) -> int:
        return await self._count(delete(ConsoleSessionRow).where(ConsoleSessionRow.expires_at_ms <= now_ms))

    async def delete_notices(self, created_before_ms: int) -> int:
        """Plain and signed safety notices created before the cutoff."""
        plain = await self._count(delete(NoticeRow).where(NoticeRow.created_at_ms < created_before_ms))
        return plain + await self._count(
            delete(SafetyNoticeRow).where(SafetyNoticeRow.created_at_ms < created_before_ms)
        )

    async def delete_vouchers(self, created_before_ms: int) -> int:
        """Vouchers that arrived before the cutoff (an opened one lives on in its image-match case)."""
        return await self._count(delete(VoucherRow).where(VoucherRow.created_at_ms < created_before_ms))

    async def delete_closed_image_matches(self, created_before_ms: int) -> int:
        """Image-match cases no longer open that were opened before the cutoff (an open one stays)."""
        return await self._count(
            delete(ImageMatchCaseRow).where(
                ImageMatchCaseRow.state.not_in(OPEN_STATES),
                ImageMatchCaseRow.created_at_ms < created_before_ms,
            )
        )

    async def delete_abandoned_queue_entries(self, sent_before_ms: int) -> int:
        """Queue entries of messages sent before the cutoff that their device never fetched; then the
        shared body of every group message left without entries (these, and any a race left behind)."""
        old = select(MessageRow.id).where(MessageRow.server_ts_ms < sent_before_ms)
        deleted = await self._count(delete(QueueRow).where(QueueRow.message_id.in_(old)))
        await MessageRepository(self._session).release_shared_bodies()
        return deleted

    async def delete_delivered_messages(self, sent_before_ms: int) -> int:
        """Delivery records of messages sent before the cutoff with no queue entry left (delivered to
        every device, or abandoned)."""
        pending = exists().where(QueueRow.message_id == MessageRow.id)
        return await self._count(delete(MessageRow).where(MessageRow.server_ts_ms < sent_before_ms, ~pending))

    async def delete_closed_membership_periods(self, left_before_ms: int) -> int:
        """Membership periods that ended before the cutoff."""
        return await self._count(
            delete(MembershipPeriodRow).where(
                MembershipPeriodRow.left_at_ms.is_not(None), MembershipPeriodRow.left_at_ms < left_before_ms
            )
        )

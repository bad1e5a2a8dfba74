"""The deletions behind `DELETE /v1/devices/{id}` and `DELETE /v1/accounts/me`
(`vigil.server.services.deletion`). Repositories never commit; each method returns how many rows went."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Delete, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.protocol.contacts import ContactRequestState
from vigil.server.db.accounts import AccountActionRow, AccountStandingRow, DeviceRow, UserRow
from vigil.server.db.appeals import AppealRow
from vigil.server.db.blobs import BlobFetcherRow, BlobRow
from vigil.server.db.cases import OPEN_STATES, CaseRow, ReportRow
from vigil.server.db.contacts import BlockRow, ConnectionRow, ContactRequestRow
from vigil.server.db.groups import GroupMemberRow, GroupRow, InviteLinkRow, MembershipPeriodRow
from vigil.server.db.hashlists import ImageMatchCaseRow, ProfilePhotoRow, VoucherRow
from vigil.server.db.labels import AccountLabelRow
from vigil.server.db.messaging import MessageRepository, MessageRow, QueueRow
from vigil.server.db.metadata import MetadataEventRow, RiskHistoryRow, RiskStateRow
from vigil.server.db.notices import NoticeRow, SafetyNoticeRow
from vigil.server.db.reporters import BadFaithMarkRow

__all__ = ["DeletionRepository"]


class DeletionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def _count(self, statement: Delete) -> int:
        result: Any = await self._session.execute(statement.execution_options(synchronize_session=False))
        return int(getattr(result, "rowcount", 0) or 0)

    async def _scalar_count(self, query: Any) -> int:
        return int(await self._session.scalar(select(func.count()).select_from(query.subquery())) or 0)

    # What decides between deleting and keeping.

    async def open_cases_about(self, user_id: int) -> int:
        cases = await self._scalar_count(
            select(CaseRow.id).where(CaseRow.subject_user_id == user_id, CaseRow.state.in_(OPEN_STATES))
        )
        matches = await self._scalar_count(
            select(ImageMatchCaseRow.id).where(
                ImageMatchCaseRow.subject_user_id == user_id, ImageMatchCaseRow.state.in_(OPEN_STATES)
            )
        )
        return cases + matches

    async def unopened_vouchers_from(self, user_id: int) -> int:
        return await self._scalar_count(
            select(VoucherRow.id).where(VoucherRow.user_id == user_id, VoucherRow.opened_at_ms.is_(None))
        )

    async def reports_made_by(self, user_id: int) -> int:
        return await self._scalar_count(select(ReportRow.id).where(ReportRow.reporter_user_id == user_id))

    async def closed_cases_about(self, user_id: int) -> int:
        return await self._scalar_count(
            select(CaseRow.id).where(CaseRow.subject_user_id == user_id, CaseRow.state.not_in(OPEN_STATES))
        )

    async def pending_deletions(self) -> Sequence[UserRow]:
        """Deleted accounts whose username and metadata were kept (`deletion_pending_since_ms` set)."""
        rows = await self._session.scalars(
            select(UserRow).where(UserRow.deletion_pending_since_ms.is_not(None)).order_by(UserRow.id)
        )
        return list(rows)

    # Devices.

    async def devices_of(self, user_id: int) -> Sequence[str]:
        return (await self._session.scalars(select(DeviceRow.id).where(DeviceRow.user_id == user_id))).all()

    async def delete_devices(self, device_ids: Collection[str]) -> tuple[int, int]:
        """Deletes the devices with their one-time keys, queued ciphertexts and blob permissions; returns
        (devices, queued ciphertexts)."""
        if not device_ids:
            return 0, 0
        result = await self._session.execute(
            delete(QueueRow).where(QueueRow.device_id.in_(device_ids)).returning(QueueRow.message_id)
        )
        message_ids = [int(message_id) for message_id in result.scalars()]
        queued = len(message_ids)
        await MessageRepository(self._session).release_shared_bodies(set(message_ids))
        await self._count(delete(BlobFetcherRow).where(BlobFetcherRow.device_id.in_(device_ids)))
        devices = await self._count(delete(DeviceRow).where(DeviceRow.id.in_(device_ids)))
        return devices, queued

    # The social graph and what is addressed to the account.

    async def delete_profile_photo(self, user_id: int) -> int:
        return await self._count(delete(ProfilePhotoRow).where(ProfilePhotoRow.user_id == user_id))

    async def delete_connections_and_blocks(self, user_id: int) -> int:
        connections = await self._count(
            delete(ConnectionRow).where(
                or_(ConnectionRow.low_user_id == user_id, ConnectionRow.high_user_id == user_id)
            )
        )
        blocks = await self._count(
            delete(BlockRow).where(
                or_(BlockRow.blocker_user_id == user_id, BlockRow.blocked_user_id == user_id)
            )
        )
        return connections + blocks

    async def leave_groups(self, user_id: int, now_ms: int) -> int:
        """Removes the account from every group (closing its membership periods); a group it created
        passes to its longest-standing remaining member, and a group left empty is deleted."""
        group_ids = (
            await self._session.scalars(
                select(GroupMemberRow.group_id).where(GroupMemberRow.user_id == user_id)
            )
        ).all()
        await self._session.execute(
            update(MembershipPeriodRow)
            .where(MembershipPeriodRow.user_id == user_id, MembershipPeriodRow.left_at_ms.is_(None))
            .values(left_at_ms=now_ms)
        )
        await self._count(delete(GroupMemberRow).where(GroupMemberRow.user_id == user_id))
        created = (
            await self._session.scalars(select(GroupRow).where(GroupRow.created_by_user_id == user_id))
        ).all()
        for group in created:
            heir = await self._session.scalar(
                select(GroupMemberRow.user_id)
                .where(GroupMemberRow.group_id == group.id)
                .order_by(GroupMemberRow.joined_at_ms)
                .limit(1)
            )
            if heir is None:
                await self._count(delete(MembershipPeriodRow).where(MembershipPeriodRow.group_id == group.id))
                await self._count(delete(InviteLinkRow).where(InviteLinkRow.group_id == group.id))
                await self._count(delete(GroupRow).where(GroupRow.id == group.id))
            else:
                group.created_by_user_id = heir
        return len(group_ids)

    async def delete_pending_requests(self, user_id: int) -> int:
        return await self._count(
            delete(ContactRequestRow).where(
                ContactRequestRow.state == ContactRequestState.PENDING.value,
                or_(
                    ContactRequestRow.requester_user_id == user_id,
                    ContactRequestRow.recipient_user_id == user_id,
                ),
            )
        )

    async def delete_notices_to(self, user_id: int) -> int:
        plain = await self._count(delete(NoticeRow).where(NoticeRow.user_id == user_id))
        return plain + await self._count(delete(SafetyNoticeRow).where(SafetyNoticeRow.user_id == user_id))

    async def blobs_uploaded_by(self, user_id: int, keep: Collection[str]) -> Sequence[str]:
        query = select(BlobRow.id).where(BlobRow.uploader_user_id == user_id)
        if keep:
            query = query.where(BlobRow.id.not_in(keep))
        return (await self._session.scalars(query)).all()

    async def delete_blobs(self, blob_ids: Collection[str]) -> int:
        if not blob_ids:
            return 0
        await self._count(delete(BlobFetcherRow).where(BlobFetcherRow.blob_id.in_(blob_ids)))
        return await self._count(delete(BlobRow).where(BlobRow.id.in_(blob_ids)))

    # The account's own metadata (only when no case or hold needs it).

    async def delete_metadata(self, user_id: int, username: str, pseudonym: str) -> int:
        """`pseudonym` is the account's name in the metadata event log."""
        events = await self._count(
            delete(MetadataEventRow).where(
                or_(MetadataEventRow.actor == pseudonym, MetadataEventRow.target == pseudonym)
            )
        )
        mine = select(MessageRow.id).where(
            or_(MessageRow.sender_user_id == user_id, MessageRow.conversation == username)
        )
        await self._count(delete(QueueRow).where(QueueRow.message_id.in_(mine)))
        messages = await self._count(
            delete(MessageRow).where(
                or_(MessageRow.sender_user_id == user_id, MessageRow.conversation == username)
            )
        )
        requests = await self._count(
            delete(ContactRequestRow).where(
                or_(
                    ContactRequestRow.requester_user_id == user_id,
                    ContactRequestRow.recipient_user_id == user_id,
                )
            )
        )
        notices = await self._count(delete(SafetyNoticeRow).where(SafetyNoticeRow.subject_user_id == user_id))
        periods = await self._count(delete(MembershipPeriodRow).where(MembershipPeriodRow.user_id == user_id))
        state = 0
        # An appeal points at the action it contests, so it goes first.
        for model in (
            AppealRow,
            AccountLabelRow,
            RiskStateRow,
            RiskHistoryRow,
            AccountStandingRow,
            AccountActionRow,
            BadFaithMarkRow,
        ):
            state += await self._count(delete(model).where(model.user_id == user_id))
        vouchers = await self._count(delete(VoucherRow).where(VoucherRow.user_id == user_id))
        return events + messages + requests + notices + periods + state + vouchers

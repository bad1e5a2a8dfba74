"""Group queries over one AsyncSession. Like every repository: flush when ids are needed, never commit."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.server.db.models import DeviceRow, GroupMemberRow, GroupRow, MessageRow, QueueRow, UserRow

__all__ = ["GroupRepository", "QueueWriter"]


class GroupRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, group_id: str) -> GroupRow | None:
        return await self._session.get(GroupRow, group_id)

    async def add(self, group: GroupRow, members: Sequence[GroupMemberRow]) -> None:
        self._session.add(group)
        await self._session.flush()
        self._session.add_all(members)
        await self._session.flush()

    async def member(self, group_id: str, user_id: int) -> GroupMemberRow | None:
        return await self._session.get(GroupMemberRow, (group_id, user_id))

    async def members(self, group_id: str) -> Sequence[tuple[GroupMemberRow, str]]:
        """Members with their usernames, longest-standing first."""
        rows = await self._session.execute(
            select(GroupMemberRow, UserRow.username)
            .join(UserRow, UserRow.id == GroupMemberRow.user_id)
            .where(GroupMemberRow.group_id == group_id)
            .order_by(GroupMemberRow.joined_at_ms, UserRow.username)
        )
        return rows.tuples().all()

    async def member_users(self, group_id: str) -> Sequence[UserRow]:
        """The members' accounts (the contact rules need their age bands)."""
        rows = await self._session.scalars(
            select(UserRow)
            .join(GroupMemberRow, GroupMemberRow.user_id == UserRow.id)
            .where(GroupMemberRow.group_id == group_id)
        )
        return rows.all()

    async def add_member(self, row: GroupMemberRow) -> None:
        self._session.add(row)
        await self._session.flush()

    async def remove_member(self, group_id: str, user_id: int) -> None:
        await self._session.execute(
            delete(GroupMemberRow).where(
                GroupMemberRow.group_id == group_id, GroupMemberRow.user_id == user_id
            )
        )

    async def groups_of(self, user_id: int) -> Sequence[tuple[str, str, int]]:
        """(group id, the user's role, member count) for every group the user is in."""
        counts = (
            select(GroupMemberRow.group_id, func.count().label("members"))
            .group_by(GroupMemberRow.group_id)
            .subquery()
        )
        rows = await self._session.execute(
            select(GroupMemberRow.group_id, GroupMemberRow.role, counts.c.members)
            .join(counts, counts.c.group_id == GroupMemberRow.group_id)
            .where(GroupMemberRow.user_id == user_id)
            .order_by(GroupMemberRow.joined_at_ms)
        )
        return [(group_id, role, int(members)) for group_id, role, members in rows.tuples().all()]

    async def member_devices(self, group_id: str) -> Sequence[tuple[DeviceRow, str]]:
        """Every device of every member, with its owner's username."""
        rows = await self._session.execute(
            select(DeviceRow, UserRow.username)
            .join(GroupMemberRow, GroupMemberRow.user_id == DeviceRow.user_id)
            .join(UserRow, UserRow.id == DeviceRow.user_id)
            .where(GroupMemberRow.group_id == group_id)
            .order_by(UserRow.username, DeviceRow.created_at_ms, DeviceRow.id)
        )
        return rows.tuples().all()

    async def device_owners(self, device_ids: Sequence[str]) -> dict[str, str]:
        """device id -> username for the devices that exist."""
        if not device_ids:
            return {}
        rows = await self._session.execute(
            select(DeviceRow.id, UserRow.username)
            .join(UserRow, UserRow.id == DeviceRow.user_id)
            .where(DeviceRow.id.in_(device_ids))
        )
        return dict(rows.tuples().all())


class QueueWriter:
    """Stores one accepted message and its per-device queue entries (the group and to-device paths)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def by_client_id(self, sender_user_id: int, client_id: str) -> MessageRow | None:
        return await self._session.scalar(
            select(MessageRow).where(
                MessageRow.sender_user_id == sender_user_id, MessageRow.client_id == client_id
            )
        )

    async def add(self, message: MessageRow, entries: Sequence[QueueRow]) -> None:
        """One INSERT for the message, one executemany for its queue entries (a 500-device group send
        through the ORM unit of work spent most of its time there)."""
        self._session.add(message)
        await self._session.flush()
        if not entries:  # a group with no other device: an empty executemany would INSERT DEFAULT VALUES
            return
        await self._session.execute(
            insert(QueueRow),
            [
                {
                    "device_id": e.device_id,
                    "message_id": message.id,
                    "message_type": e.message_type,
                    "body": e.body,
                }
                for e in entries
            ],
        )

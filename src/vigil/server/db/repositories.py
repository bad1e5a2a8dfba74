"""Repositories: queries over one AsyncSession. They flush when they need generated ids, never commit;
the calling service owns the transaction."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.server.db.models import (
    BlobFetcherRow,
    BlobRow,
    DeviceRow,
    MessageRow,
    OneTimeKeyRow,
    QueueRow,
    UserRow,
)
from vigil.server.db.safety_models import AccountStandingRow

__all__ = ["BlobRepository", "DeviceRepository", "KeyRepository", "MessageRepository", "UserRepository"]


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def by_username(self, username: str) -> UserRow | None:
        return await self._session.scalar(select(UserRow).where(UserRow.username == username))

    async def by_id(self, user_id: int) -> UserRow | None:
        return await self._session.get(UserRow, user_id)

    async def add(self, row: UserRow) -> UserRow:
        self._session.add(row)
        await self._session.flush()
        return row


class DeviceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, device_id: str) -> DeviceRow | None:
        return await self._session.get(DeviceRow, device_id)

    async def of_user(self, user_id: int) -> Sequence[DeviceRow]:
        rows = await self._session.scalars(
            select(DeviceRow)
            .where(DeviceRow.user_id == user_id)
            .order_by(DeviceRow.created_at_ms, DeviceRow.id)
        )
        return rows.all()

    async def add(self, row: DeviceRow) -> None:
        self._session.add(row)
        await self._session.flush()

    async def with_user(self, device_id: str) -> tuple[DeviceRow, UserRow] | None:
        """The device and its account in one round trip (the authentication hot path)."""
        row = (
            await self._session.execute(
                select(DeviceRow, UserRow).join(UserRow, UserRow.id == DeviceRow.user_id).where(DeviceRow.id == device_id)
            )
        ).first()
        return None if row is None else (row[0], row[1])

    async def with_user_and_standing(self, device_id: str) -> tuple[DeviceRow, UserRow, str | None] | None:
        """The device, its account and the account's standing (None: no standing row) in one round trip."""
        row = (
            await self._session.execute(
                select(DeviceRow, UserRow, AccountStandingRow.standing)
                .join(UserRow, UserRow.id == DeviceRow.user_id)
                .outerjoin(AccountStandingRow, AccountStandingRow.user_id == UserRow.id)
                .where(DeviceRow.id == device_id)
            )
        ).first()
        return None if row is None else (row[0], row[1], row[2])

    async def of_users(self, user_ids: Collection[int]) -> dict[int, list[DeviceRow]]:
        """Devices of several accounts in one query, each list in registration order."""
        rows = await self._session.scalars(
            select(DeviceRow).where(DeviceRow.user_id.in_(user_ids)).order_by(DeviceRow.created_at_ms, DeviceRow.id)
        )
        found: dict[int, list[DeviceRow]] = {user_id: [] for user_id in user_ids}
        for row in rows:
            found[row.user_id].append(row)
        return found


class KeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def existing_key_ids(self, device_id: str, *, fallback: bool) -> set[str]:
        rows = await self._session.scalars(
            select(OneTimeKeyRow.key_id).where(
                OneTimeKeyRow.device_id == device_id, OneTimeKeyRow.is_fallback == fallback
            )
        )
        return set(rows.all())

    async def add_all(self, rows: Sequence[OneTimeKeyRow]) -> None:
        self._session.add_all(rows)
        await self._session.flush()

    async def replace_fallback(self, row: OneTimeKeyRow) -> None:
        await self._session.execute(
            delete(OneTimeKeyRow).where(OneTimeKeyRow.device_id == row.device_id, OneTimeKeyRow.is_fallback)
        )
        self._session.add(row)
        await self._session.flush()

    async def count_one_time(self, device_id: str) -> int:
        count = await self._session.scalar(
            select(func.count()).where(OneTimeKeyRow.device_id == device_id, ~OneTimeKeyRow.is_fallback)
        )
        return int(count or 0)

    async def has_fallback(self, device_id: str) -> bool:
        found = await self._session.scalar(
            select(OneTimeKeyRow.id).where(OneTimeKeyRow.device_id == device_id, OneTimeKeyRow.is_fallback)
        )
        return found is not None

    async def take_one(self, device_id: str) -> OneTimeKeyRow | None:
        """Removes and returns one one-time key; a fallback key is returned but kept (it is reusable)."""
        query = (
            select(OneTimeKeyRow)
            .where(OneTimeKeyRow.device_id == device_id, ~OneTimeKeyRow.is_fallback)
            .order_by(OneTimeKeyRow.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        row = await self._session.scalar(query)
        if row is not None:
            await self._session.delete(row)
            await self._session.flush()
            return row
        return await self._session.scalar(
            select(OneTimeKeyRow).where(OneTimeKeyRow.device_id == device_id, OneTimeKeyRow.is_fallback)
        )


class MessageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def by_client_id(self, sender_user_id: int, client_id: str) -> MessageRow | None:
        return await self._session.scalar(
            select(MessageRow).where(
                MessageRow.sender_user_id == sender_user_id, MessageRow.client_id == client_id
            )
        )

    async def by_client_ids(self, keys: Collection[tuple[int, str]]) -> list[MessageRow]:
        """The messages with any of these (sender user id, client id) pairs, in one query."""
        if not keys:
            return []
        rows = await self._session.scalars(
            select(MessageRow).where(tuple_(MessageRow.sender_user_id, MessageRow.client_id).in_(list(keys)))
        )
        return list(rows)

    async def add_many(
        self, messages: Sequence[tuple[dict[str, Any], Sequence[dict[str, Any]]]]
    ) -> list[int]:
        """Inserts several messages (column values without `id`) and their queue entries (`device_id`,
        `message_type`, `body`) with two statements; returns the messages' ids in order."""
        result = await self._session.execute(
            insert(MessageRow).returning(MessageRow.id, sort_by_parameter_order=True),
            [values for values, _ in messages],
        )
        ids = [int(i) for i in result.scalars().all()]
        await self._session.execute(
            insert(QueueRow),
            [
                {**entry, "message_id": message_id}
                for message_id, (_, entries) in zip(ids, messages, strict=True)
                for entry in entries
            ],
        )
        return ids

    async def add(self, message: MessageRow, entries: Sequence[QueueRow]) -> int:
        """Inserts the message and its queue entries with two statements (Core inserts: the ORM unit of
        work was most of the send path's CPU); returns the message's id."""
        values = {column.key: getattr(message, column.key) for column in MessageRow.__table__.columns if column.key != "id"}
        message_id = int((await self._session.execute(insert(MessageRow).values(values).returning(MessageRow.id))).scalar_one())
        await self._session.execute(
            insert(QueueRow),
            [
                {"device_id": e.device_id, "message_id": message_id, "message_type": e.message_type, "body": e.body}
                for e in entries
            ],
        )
        return message_id

    async def pending(
        self, device_id: str, *, after: int, limit: int, skip: Collection[int] = ()
    ) -> Sequence[tuple[QueueRow, MessageRow, str]]:
        """Queued entries for the device with ids above `after`, oldest first, minus `skip`, each with
        its message and the sender's username."""
        rows = await self._session.execute(
            select(QueueRow, MessageRow, UserRow.username)
            .join(MessageRow, MessageRow.id == QueueRow.message_id)
            .join(UserRow, UserRow.id == MessageRow.sender_user_id)
            .where(QueueRow.device_id == device_id, QueueRow.id > after)
            .order_by(QueueRow.id)
            .limit(limit + len(skip))
        )
        found = [(queue, message, sender) for queue, message, sender in rows.all() if queue.id not in skip]
        return found[:limit]

    async def delete_entries(self, device_id: str, entry_ids: Sequence[int]) -> int:
        result = await self._session.execute(
            delete(QueueRow).where(QueueRow.device_id == device_id, QueueRow.id.in_(entry_ids))
        )
        return int(getattr(result, "rowcount", 0) or 0)


class BlobRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, blob_id: str) -> BlobRow | None:
        return await self._session.get(BlobRow, blob_id)

    async def add(self, row: BlobRow) -> None:
        self._session.add(row)
        await self._session.flush()

    async def add_fetchers(self, blob_id: str, device_ids: Sequence[str]) -> None:
        self._session.add_all([BlobFetcherRow(blob_id=blob_id, device_id=d) for d in device_ids])
        await self._session.flush()

    async def is_fetcher(self, blob_id: str, device_id: str) -> bool:
        return await self._session.get(BlobFetcherRow, (blob_id, device_id)) is not None

    async def remove_fetcher(self, blob_id: str, device_id: str) -> int:
        """Removes the device from the blob's fetchers; returns how many fetchers remain."""
        await self._session.execute(
            delete(BlobFetcherRow).where(
                BlobFetcherRow.blob_id == blob_id, BlobFetcherRow.device_id == device_id
            )
        )
        remaining = await self._session.scalar(
            select(func.count()).select_from(BlobFetcherRow).where(BlobFetcherRow.blob_id == blob_id)
        )
        return int(remaining or 0)

    async def delete(self, blob_id: str) -> None:
        await self._session.execute(delete(BlobFetcherRow).where(BlobFetcherRow.blob_id == blob_id))
        await self._session.execute(delete(BlobRow).where(BlobRow.id == blob_id))

    async def stored_bytes(self, uploader_user_id: int, now_ms: int) -> int:
        """Bytes of the account's blobs still kept: not fetched by every recipient yet, not expired."""
        total = await self._session.scalar(
            select(func.coalesce(func.sum(BlobRow.size), 0)).where(
                BlobRow.uploader_user_id == uploader_user_id, BlobRow.expires_at_ms > now_ms
            )
        )
        return int(total or 0)

    async def expired(self, now_ms: int, limit: int = 500) -> Sequence[str]:
        rows = await self._session.scalars(
            select(BlobRow.id).where(BlobRow.expires_at_ms <= now_ms).limit(limit)
        )
        return rows.all()

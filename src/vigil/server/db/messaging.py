"""Messages and the per-device delivery queue: ciphertexts, franking commitments and tags, and the
metadata the server legitimately sees."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar, cast

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    UniqueConstraint,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from vigil.protocol.ids import UserId
from vigil.protocol.wire import MEGOLM_MESSAGE_TYPE
from vigil.server.db.accounts import UserRow
from vigil.server.db.base import Base

__all__ = ["AcceptedMessage", "MessageRepository", "MessageRow", "PendingEntry", "QueueRow"]


class MessageRow(Base):
    """One accepted message: its franking commitment and the server's tag, never its content."""

    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("sender_user_id", "client_id", name="uq_messages_sender_client"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(64))
    sender_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    sender_device_id: Mapped[str] = mapped_column(String(64))
    conversation: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(16))
    commitment: Mapped[bytes] = mapped_column(LargeBinary(32))
    franking_tag: Mapped[bytes] = mapped_column(LargeBinary(32))
    server_ts_ms: Mapped[int] = mapped_column(BigInteger)
    device_count: Mapped[int] = mapped_column(Integer)
    # A group message's one Megolm ciphertext, shared by all its queue entries (which have no body of
    # their own); NULL for a direct message, and set to NULL once the last queue entry is gone.
    shared_body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, default=None)


class QueueRow(Base):
    """One ciphertext waiting for one device; deleted when that device acks it. A group message's
    entries have no `body`: they share their message's `shared_body`."""

    __tablename__ = "queue"
    # AUTOINCREMENT on SQLite: ids are never reused after a delete, so "after entry N" stays correct.
    __table_args__ = (Index("ix_queue_device_id_id", "device_id", "id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    message_type: Mapped[int] = mapped_column(Integer)
    body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


_MESSAGES = cast(Table, MessageRow.__table__)
_QUEUE = cast(Table, QueueRow.__table__)


class MessageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def has_conversation(self, a_id: int, a_name: UserId, b_id: int, b_name: UserId) -> bool:
        """Whether either account has ever sent the other a direct message."""
        found = await self._session.scalar(
            select(MessageRow.id)
            .where(
                or_(
                    (MessageRow.sender_user_id == a_id) & (MessageRow.conversation == b_name),
                    (MessageRow.sender_user_id == b_id) & (MessageRow.conversation == a_name),
                )
            )
            .limit(1)
        )
        return found is not None

    async def by_client_id(self, sender_user_id: int, client_id: str) -> MessageRow | None:
        return await self._session.scalar(
            select(MessageRow).where(
                MessageRow.sender_user_id == sender_user_id, MessageRow.client_id == client_id
            )
        )

    async def by_client_ids(self, keys: Collection[tuple[int, str]]) -> list[AcceptedMessage]:
        """The messages with any of these (sender user id, client id) pairs, in one Core query (the send
        batch's duplicate check: usually nothing is found, and no ORM machinery is paid for it)."""
        if not keys:
            return []
        rows = await self._session.execute(
            select(
                _MESSAGES.c.sender_user_id,
                _MESSAGES.c.client_id,
                _MESSAGES.c.server_ts_ms,
                _MESSAGES.c.device_count,
                _MESSAGES.c.franking_tag,
            ).where(tuple_(_MESSAGES.c.sender_user_id, _MESSAGES.c.client_id).in_(padded(list(keys))))
        )
        return [AcceptedMessage._make(row) for row in rows]

    async def add_many(
        self, messages: Sequence[tuple[dict[str, Any], Sequence[dict[str, Any]]]]
    ) -> list[tuple[int, list[int]]]:
        """Inserts several messages (column values without `id`) and their queue entries (`device_id`,
        `message_type`, `body`) with two statements; returns each message's id and its entries' ids, in
        order (the ids a committed send hands to the recipients' sockets)."""
        # On the tables, not the mapped classes: the ORM's bulk insert processes every row in Python first.
        result = await self._session.execute(
            insert(_MESSAGES).returning(_MESSAGES.c.id, sort_by_parameter_order=True),
            [values for values, _ in messages],
        )
        ids = [int(i) for i in result.scalars().all()]
        rows = [
            {**entry, "message_id": message_id}
            for message_id, (_, entries) in zip(ids, messages, strict=True)
            for entry in entries
        ]
        entry_ids = iter(await self._insert_entries(rows))
        return [
            (message_id, [next(entry_ids) for _ in entries])
            for message_id, (_, entries) in zip(ids, messages, strict=True)
        ]

    async def add_shared(
        self, messages: Sequence[tuple[dict[str, Any], Sequence[str]]]
    ) -> list[tuple[int, list[int]]]:
        """Inserts group messages (column values without `id`, with their `shared_body`) and, for each,
        one bodiless Megolm queue entry per device id (listed once per message); returns each message's
        id and its entries' ids in the order given. The entries of the whole batch go in one statement
        whose rows travel as one parameter (arrays on PostgreSQL, a JSON array on SQLite): 500 rows a
        message through `executemany` cost more in bound-parameter handling than in the database."""
        result = await self._session.execute(
            insert(_MESSAGES).returning(_MESSAGES.c.id, sort_by_parameter_order=True),
            [values for values, _ in messages],
        )
        ids = [int(i) for i in result.scalars().all()]
        devices = [d for _, device_ids in messages for d in device_ids]
        of_message = [m for m, (_, device_ids) in zip(ids, messages, strict=True) for _ in device_ids]
        if not devices:
            return [(m, []) for m in ids]
        if self._session.get_bind().dialect.name == "postgresql":
            rows = await self._session.execute(
                _INSERT_SHARED_ENTRIES_POSTGRES,
                {"devices": devices, "messages": of_message, "message_type": MEGOLM_MESSAGE_TYPE},
            )
        else:
            rows = await self._session.execute(
                _INSERT_SHARED_ENTRIES_SQLITE,
                {
                    "entries": json.dumps(list(zip(devices, of_message, strict=True))),
                    "message_type": MEGOLM_MESSAGE_TYPE,
                },
            )
        # RETURNING's row order is not promised: each (message, device) pair is one entry.
        entry_of = {(int(m), str(d)): int(i) for i, d, m in rows}
        if len(entry_of) != len(devices):
            raise ValueError("a device is listed twice for one message")
        return [
            (m, [entry_of[(m, d)] for d in device_ids])
            for m, (_, device_ids) in zip(ids, messages, strict=True)
        ]

    async def add(self, message: MessageRow, entries: Sequence[QueueRow]) -> list[int]:
        """One INSERT for the message, one executemany for its queue entries (a 500-device group send
        through the ORM unit of work spent most of its time there); returns the entries' ids in order."""
        self._session.add(message)
        await self._session.flush()
        return await self._insert_entries(
            [
                {
                    "device_id": e.device_id,
                    "message_id": message.id,
                    "message_type": e.message_type,
                    "body": e.body,
                }
                for e in entries
            ]
        )

    async def _insert_entries(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        if not rows:  # e.g. a group with no other device: an empty executemany would INSERT DEFAULT VALUES
            return []
        result = await self._session.execute(
            insert(_QUEUE).returning(_QUEUE.c.id, sort_by_parameter_order=True), rows
        )
        return [int(i) for i in result.scalars().all()]

    async def pending(
        self, device_id: str, *, after: int, limit: int, skip: Collection[int] = ()
    ) -> list[PendingEntry]:
        """Queued entries for the device with ids above `after`, oldest first, minus `skip`, each with
        its message's columns and the sender's username (one Core query: no ORM objects on the push path)."""
        rows = await self._session.execute(
            _PENDING.where(QueueRow.device_id == device_id, QueueRow.id > after).limit(limit + len(skip))
        )
        found = [PendingEntry._make(row) for row in rows if row[0] not in skip]
        return found[:limit]

    async def pending_of_devices(self, wanted: Mapping[str, int]) -> dict[str, list[PendingEntry]]:
        """The first `wanted[device]` queued entries of each device, oldest first, in one query (the
        drains of many sockets woken together); a device with none is missing from the answer."""
        if not wanted:
            return {}
        rank = func.row_number().over(partition_by=_QUEUE.c.device_id, order_by=_QUEUE.c.id).label("rank")
        ranked = (
            select(_QUEUE.c.id.label("entry_id"), _QUEUE.c.device_id.label("ranked_device"), rank)
            .where(_QUEUE.c.device_id.in_(padded(sorted(wanted))))
            .subquery()
        )
        rows = await self._session.execute(
            _PENDING.join(ranked, ranked.c.entry_id == QueueRow.id).where(
                ranked.c.rank <= max(wanted.values())
            )
        )
        found: dict[str, list[PendingEntry]] = {}
        for row in rows:
            entry = PendingEntry._make(row)
            mine = found.setdefault(entry.device_id, [])
            if len(mine) < wanted[entry.device_id]:
                mine.append(entry)
        return found

    async def delete_entries(self, device_id: str, entry_ids: Sequence[int]) -> int:
        return len(await self.delete_entries_of([(device_id, i) for i in entry_ids]))

    async def delete_entries_of(self, pairs: Collection[tuple[str, int]]) -> set[tuple[str, int]]:
        """Deletes the (device id, entry id) pairs that exist, in one statement whatever their number
        (acks of many sockets coalesced: the pairs travel as one parameter, arrays on PostgreSQL and a
        JSON array on SQLite, so no driver's bound-parameter limit applies and the entries are found
        by their primary key); returns the pairs deleted. A pair naming another device's entry deletes
        nothing. A group message whose last entry went loses its shared body."""
        deleted: set[tuple[str, int]] = set()
        if not pairs:
            return deleted
        if self._session.get_bind().dialect.name == "postgresql":
            devices, ids = zip(*pairs, strict=True)
            result = await self._session.execute(
                _DELETE_ENTRIES_POSTGRES, {"devices": list(devices), "ids": list(ids)}
            )
        else:
            result = await self._session.execute(_DELETE_ENTRIES_SQLITE, {"pairs": json.dumps(list(pairs))})
        sharing: set[int] = set()
        for device_id, entry_id, message_id, message_type in result:
            deleted.add((str(device_id), int(entry_id)))
            # Not `body IS NULL` in RETURNING: SQLite 3.40 answers 0 there for a NULL body.
            if message_type == MEGOLM_MESSAGE_TYPE:
                sharing.add(int(message_id))
        await self.release_shared_bodies(sharing)
        return deleted

    async def release_shared_bodies(self, message_ids: Collection[int] | None = None) -> int:
        """Drops the shared body of each of these group messages (of every message when None) that has
        no queue entry left; returns how many were dropped. Run after deleting queue entries; a body that
        two concurrent transactions each thought still needed (PostgreSQL, several workers) is dropped by
        the next call without ids (the abandoned-entries sweep)."""
        if message_ids is not None and not message_ids:
            return 0
        statement = (
            update(_MESSAGES)  # the table, as the deletes: no ORM session bookkeeping
            .where(
                _MESSAGES.c.shared_body.is_not(None),
                ~exists().where(_QUEUE.c.message_id == _MESSAGES.c.id),
            )
            .values(shared_body=None)
        )
        if message_ids is None:
            result: Any = await self._session.execute(statement)
            return int(result.rowcount or 0)
        dropped = 0
        ids = sorted(message_ids)
        for start in range(0, len(ids), DELETE_CHUNK):
            result = await self._session.execute(
                statement.where(_MESSAGES.c.id.in_(padded(ids[start : start + DELETE_CHUNK])))
            )
            dropped += int(result.rowcount or 0)
        return dropped


# Ids of messages whose shared bodies may go, per statement: far below every driver's bound-parameter
# limit (32,766 on SQLite, 32,767 on PostgreSQL).
DELETE_CHUNK = 4000

# The rows of a batch as one parameter each (see `add_shared` and `delete_entries_of`). `ORDER BY` the
# position: the ids are assigned in that order, so one device's entries keep their messages' order.
_INSERT_SHARED_ENTRIES_POSTGRES = text(
    "INSERT INTO queue (device_id, message_id, message_type) "
    "SELECT entry.device_id, entry.message_id, :message_type "
    "FROM unnest(CAST(:devices AS VARCHAR[]), CAST(:messages AS INTEGER[])) "
    "WITH ORDINALITY AS entry(device_id, message_id, position) "
    "ORDER BY entry.position "
    "RETURNING queue.id, queue.device_id, queue.message_id"
)
_INSERT_SHARED_ENTRIES_SQLITE = text(
    "INSERT INTO queue (device_id, message_id, message_type) "
    "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), :message_type "
    "FROM json_each(:entries) ORDER BY key "
    "RETURNING id, device_id, message_id"
)
_DELETE_ENTRIES_POSTGRES = text(
    "DELETE FROM queue USING unnest(CAST(:devices AS VARCHAR[]), CAST(:ids AS BIGINT[])) "
    "AS acked(device_id, id) "
    "WHERE queue.id = acked.id AND queue.device_id = acked.device_id "
    "RETURNING queue.device_id, queue.id, queue.message_id, queue.message_type"
)
_DELETE_ENTRIES_SQLITE = text(
    "DELETE FROM queue WHERE (device_id, id) IN "
    "(SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(:pairs)) "
    "RETURNING device_id, id, message_id, message_type"
)

T = TypeVar("T")


def padded(values: list[T]) -> list[T]:
    """`values` with its last item repeated up to the next power of two: an IN list of any length then
    renders as one of a few statements, which the driver prepares once and reuses (asyncpg keeps a
    bounded cache of prepared statements keyed by their text; every distinct length was a new one)."""
    size = 1
    while size < len(values):
        size *= 2
    return values + values[-1:] * (size - len(values))


class AcceptedMessage(NamedTuple):
    """What a retried send is answered with."""

    sender_user_id: int
    client_id: str
    server_ts_ms: int
    device_count: int
    franking_tag: bytes


class PendingEntry(NamedTuple):
    """A queue entry as the push path reads it: the entry, its message's columns, the sender's name."""

    id: int
    device_id: str
    message_type: int
    body: bytes
    client_id: str
    sender_device_id: str
    conversation: str
    kind: str
    commitment: bytes
    franking_tag: bytes
    server_ts_ms: int
    sender: str


_PENDING = (
    select(
        QueueRow.id,
        QueueRow.device_id,
        QueueRow.message_type,
        func.coalesce(QueueRow.body, MessageRow.shared_body),
        MessageRow.client_id,
        MessageRow.sender_device_id,
        MessageRow.conversation,
        MessageRow.kind,
        MessageRow.commitment,
        MessageRow.franking_tag,
        MessageRow.server_ts_ms,
        UserRow.username,
    )
    .join(MessageRow, MessageRow.id == QueueRow.message_id)
    .join(UserRow, UserRow.id == MessageRow.sender_user_id)
    .order_by(QueueRow.id)
)

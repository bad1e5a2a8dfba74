"""What a direct send needs to know about its recipient, in one round trip: the account, the rule's
inputs (the sender's standing, a block by the recipient, a connection between the two) and the device
ids of both accounts. The send batch made five queries for it (recipient, standing, block, connection,
devices); one compiled statement with bound parameters is reused for every send."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, and_, bindparam, exists, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.server.db.accounts import AccountStandingRow, DeviceRow, UserRow
from vigil.server.db.contacts import BlockRow, ConnectionRow
from vigil.server.db.messaging import MessageRepository
from vigil.server.db.metadata import MetadataRepository

__all__ = ["Recipient", "SendingRepository"]


class Recipient(NamedTuple):
    """A recipient as a direct send sees it. `device_ids` are the recipient's and the sender's devices
    (each account's in registration order); `connected` is whether the two are connected contacts."""

    user_id: int
    username: str
    age_band: str
    sender_standing: str | None
    blocked_by_recipient: bool
    connected: bool
    device_ids: dict[int, list[str]]


_SENDER = bindparam("sender", type_=UserRow.id.type)
_TO = bindparam("to", type_=UserRow.username.type)

# On the tables, not the mapped classes: a plain Core statement, no ORM compilation or row loading.
_USERS = cast(Table, UserRow.__table__).c
_DEVICES = cast(Table, DeviceRow.__table__).c
_STANDING = cast(Table, AccountStandingRow.__table__).c
_BLOCKS = cast(Table, BlockRow.__table__).c
_CONNECTIONS = cast(Table, ConnectionRow.__table__).c

_RECIPIENT = (
    select(
        _USERS.id,
        _USERS.username,
        _USERS.age_band,
        select(_STANDING.standing).where(_STANDING.user_id == _SENDER).scalar_subquery(),
        exists().where(_BLOCKS.blocker_user_id == _USERS.id, _BLOCKS.blocked_user_id == _SENDER),
        exists().where(
            or_(
                and_(_CONNECTIONS.low_user_id == _USERS.id, _CONNECTIONS.high_user_id == _SENDER),
                and_(_CONNECTIONS.low_user_id == _SENDER, _CONNECTIONS.high_user_id == _USERS.id),
            )
        ),
        _DEVICES.id,
        _DEVICES.user_id,
    )
    .select_from(cast(Table, UserRow.__table__))
    .outerjoin(
        cast(Table, DeviceRow.__table__), or_(_DEVICES.user_id == _USERS.id, _DEVICES.user_id == _SENDER)
    )
    .where(_USERS.username == _TO)
    .order_by(_DEVICES.created_at_ms, _DEVICES.id)
)


_MESSAGE_COLUMNS = (
    ("client_id", "varchar"),
    ("sender_user_id", "integer"),
    ("sender_device_id", "varchar"),
    ("conversation", "varchar"),
    ("kind", "varchar"),
    ("commitment", "bytea"),
    ("franking_tag", "bytea"),
    ("server_ts_ms", "bigint"),
    ("device_count", "integer"),
)
_EVENT_COLUMNS = (
    ("at_ms", "bigint"),
    ("kind", "varchar"),
    ("actor", "varchar"),
    ("target", "varchar"),
    ("group_id", "varchar"),
    ("content", "varchar"),
    ("reason", "varchar"),
)


def _unnest(prefix: str, columns: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f"CAST(:{prefix}{name} AS {kind}[])" for name, kind in columns)


def _names(columns: Sequence[tuple[str, str]]) -> str:
    return ", ".join(name for name, _ in columns)


# PostgreSQL: a send batch's messages, queue entries and metadata events in one statement (one round trip
# instead of three), with one array per column so that every batch size shares one prepared statement.
# Rows are inserted in array order (INSERT ... SELECT ... ORDER BY assigns serial ids in that order, which
# SQLAlchemy's own ordered multi-row insert relies on too), so entry ids keep the order of the batch.
_INSERT_BATCH = text(
    f"""
WITH new_messages AS (
    INSERT INTO messages ({_names(_MESSAGE_COLUMNS)})
    SELECT {_names(_MESSAGE_COLUMNS)}
    FROM unnest({_unnest("m_", _MESSAGE_COLUMNS)}) WITH ORDINALITY
        AS m({_names(_MESSAGE_COLUMNS)}, position)
    ORDER BY position
    RETURNING id, sender_user_id, client_id
), new_entries AS (
    INSERT INTO queue (device_id, message_id, message_type, body)
    SELECT e.device_id, new_messages.id, e.message_type, e.body
    FROM unnest(
        CAST(:e_sender_user_id AS integer[]), CAST(:e_client_id AS varchar[]),
        CAST(:e_device_id AS varchar[]), CAST(:e_message_type AS integer[]), CAST(:e_body AS bytea[])
    ) WITH ORDINALITY AS e(sender_user_id, client_id, device_id, message_type, body, position)
    JOIN new_messages USING (sender_user_id, client_id)
    ORDER BY e.position
    RETURNING id, message_id
), new_events AS (
    INSERT INTO metadata_events ({_names(_EVENT_COLUMNS)})
    SELECT {_names(_EVENT_COLUMNS)}
    FROM unnest({_unnest("v_", _EVENT_COLUMNS)}) WITH ORDINALITY AS v({_names(_EVENT_COLUMNS)}, position)
    ORDER BY position
)
SELECT new_messages.sender_user_id, new_messages.client_id, new_entries.id
FROM new_entries JOIN new_messages ON new_messages.id = new_entries.message_id
ORDER BY new_entries.id
"""  # noqa: S608 - built from the constant column lists above; every value is a bound parameter
)


class SendingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def recipient(self, sender_user_id: int, to: str) -> Recipient | None:
        """The account named `to` as sender `sender_user_id` sees it; None if there is none."""
        rows = (await self._session.execute(_RECIPIENT, {"sender": sender_user_id, "to": to})).all()
        if not rows:
            return None
        user_id, username, age_band, standing, blocked, connected = rows[0][:6]
        device_ids: dict[int, list[str]] = {int(user_id): [], sender_user_id: []}
        for row in rows:
            if row[6] is not None:
                device_ids[int(row[7])].append(str(row[6]))
        return Recipient(
            int(user_id), str(username), str(age_band), standing, bool(blocked), bool(connected), device_ids
        )

    async def insert_batch(
        self,
        messages: Sequence[tuple[dict[str, Any], Sequence[dict[str, Any]]]],
        events: Sequence[dict[str, Any]],
    ) -> list[list[int]]:
        """A send batch's writes: the messages (column values without `id`), their queue entries
        (`device_id`, `message_type`, `body`) and the metadata event rows; returns each message's entry
        ids, in order. One statement on PostgreSQL (atomic by itself: a batch that writes nothing else
        runs it outside a transaction), three elsewhere."""
        if self._session.get_bind().dialect.name != "postgresql":
            inserted = await MessageRepository(self._session).add_many(messages)
            await MetadataRepository(self._session).add_values(events)
            return [entry_ids for _, entry_ids in inserted]
        parameters: dict[str, list[Any]] = {
            f"m_{name}": [values[name] for values, _ in messages] for name, _ in _MESSAGE_COLUMNS
        }
        parameters |= {f"v_{name}": [row[name] for row in events] for name, _ in _EVENT_COLUMNS}
        entries = [(values, entry) for values, message_entries in messages for entry in message_entries]
        parameters["e_sender_user_id"] = [values["sender_user_id"] for values, _ in entries]
        parameters["e_client_id"] = [values["client_id"] for values, _ in entries]
        for name in ("device_id", "message_type", "body"):
            parameters[f"e_{name}"] = [entry[name] for _, entry in entries]
        found: dict[tuple[int, str], list[int]] = {}
        for sender_user_id, client_id, entry_id in await self._session.execute(_INSERT_BATCH, parameters):
            found.setdefault((int(sender_user_id), str(client_id)), []).append(int(entry_id))
        return [found.get((values["sender_user_id"], values["client_id"]), []) for values, _ in messages]

"""Group and verification state in the device store's SQLite file.

Megolm sessions are vodozemac pickles encrypted with the store's pickle key; everything else that is
secret or personal (who a session was shared with, group names, verification records, device keys seen)
is sealed with the store's data key. Group ids, session ids and usernames are stored in the clear as
lookup keys: the server knows them too. The tables are versioned as the "groups" component of the file
(see `vigil.client.store.migrate`).
"""

from __future__ import annotations

import json
from typing import Any

from vigil.client.engine import InboundRecord, OutboundRecord
from vigil.client.store import DeviceStore, Migration, migrate
from vigil.protocol.megolm import GroupSessionStats, InboundGroupSession, OutboundGroupSession

__all__ = ["GROUP_MIGRATIONS", "GroupStore"]

GROUP_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "group tables: Megolm sessions, seen indexes, names, verification, device keys seen",
        (
            "CREATE TABLE IF NOT EXISTS group_outbound (group_id TEXT PRIMARY KEY, pickle TEXT NOT NULL,"
            " created_at_ms INTEGER NOT NULL, messages_sent INTEGER NOT NULL, shared_with BLOB NOT NULL)",
            "CREATE TABLE IF NOT EXISTS group_inbound (session_id TEXT PRIMARY KEY, group_id TEXT NOT NULL,"
            " sender TEXT NOT NULL, sender_device TEXT NOT NULL, first_index INTEGER NOT NULL,"
            " pickle TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS group_seen (session_id TEXT NOT NULL, message_index INTEGER NOT NULL,"
            " message_id TEXT NOT NULL, PRIMARY KEY (session_id, message_index))",
            "CREATE TABLE IF NOT EXISTS group_meta (group_id TEXT PRIMARY KEY, record BLOB NOT NULL)",
            "CREATE TABLE IF NOT EXISTS verification (username TEXT PRIMARY KEY, record BLOB NOT NULL)",
            "CREATE TABLE IF NOT EXISTS seen_device_keys (username TEXT PRIMARY KEY, record BLOB NOT NULL)",
        ),
    ),
)


class GroupStore:
    def __init__(self, store: DeviceStore) -> None:
        self._store = store
        self._db = store.connection
        migrate(self._db, "groups", GROUP_MIGRATIONS)

    # ---- sealed JSON records ---------------------------------------------------------------------

    def _get_record(self, table: str, key_column: str, key: str) -> dict[str, Any] | None:
        row = self._db.execute(f"SELECT record FROM {table} WHERE {key_column} = ?", (key,)).fetchone()  # noqa: S608 - fixed names
        if row is None:
            return None
        loaded: dict[str, Any] = json.loads(self._store.open_sealed(bytes(row[0]), table.encode()))
        return loaded

    def _set_record(self, table: str, key_column: str, key: str, record: dict[str, Any]) -> None:
        sealed = self._store.seal(json.dumps(record).encode(), table.encode())
        self._db.execute(
            f"INSERT OR REPLACE INTO {table} ({key_column}, record) VALUES (?, ?)",  # noqa: S608 - fixed names
            (key, sealed),
        )

    # ---- outbound sessions -----------------------------------------------------------------------

    def outbound(self, group_id: str) -> OutboundRecord | None:
        row = self._db.execute(
            "SELECT pickle, created_at_ms, messages_sent, shared_with FROM group_outbound WHERE group_id = ?",
            (group_id,),
        ).fetchone()
        if row is None:
            return None
        key = self._store.pickle_key
        shared = json.loads(self._store.open_sealed(bytes(row[3]), b"group_outbound"))
        return OutboundRecord(
            OutboundGroupSession.from_pickle(row[0], key),
            GroupSessionStats(row[1], row[2], frozenset(shared)),
        )

    def save_outbound(self, group_id: str, record: OutboundRecord) -> None:
        shared = self._store.seal(json.dumps(sorted(record.stats.shared_with)).encode(), b"group_outbound")
        self._db.execute(
            "INSERT OR REPLACE INTO group_outbound"
            " (group_id, pickle, created_at_ms, messages_sent, shared_with) VALUES (?, ?, ?, ?, ?)",
            (
                group_id,
                record.session.pickle(self._store.pickle_key),
                record.stats.created_at_ms,
                record.stats.messages_sent,
                shared,
            ),
        )

    def drop_outbound(self, group_id: str) -> None:
        self._db.execute("DELETE FROM group_outbound WHERE group_id = ?", (group_id,))

    # ---- inbound sessions ------------------------------------------------------------------------

    def inbound(self, session_id: str) -> InboundRecord | None:
        row = self._db.execute(
            "SELECT pickle, group_id, sender, sender_device FROM group_inbound WHERE session_id = ?",
            (session_id,),
        ).fetchone()
        if row is None:
            return None
        return InboundRecord(
            InboundGroupSession.from_pickle(row[0], self._store.pickle_key), row[1], row[2], row[3]
        )

    def save_inbound(self, record: InboundRecord) -> None:
        """Keeps whichever copy of a session reaches further back (a lower first known index)."""
        existing = self._db.execute(
            "SELECT first_index FROM group_inbound WHERE session_id = ?", (record.session.session_id,)
        ).fetchone()
        if existing is not None and int(existing[0]) <= record.session.first_known_index:
            return
        self._db.execute(
            "INSERT OR REPLACE INTO group_inbound"
            " (session_id, group_id, sender, sender_device, first_index, pickle) VALUES (?, ?, ?, ?, ?, ?)",
            (
                record.session.session_id,
                record.group_id,
                record.sender,
                record.sender_device,
                record.session.first_known_index,
                record.session.pickle(self._store.pickle_key),
            ),
        )

    def seen_message(self, session_id: str, index: int) -> str | None:
        """The message id first decrypted at this (session, index), if any: Megolm does not stop replays."""
        row = self._db.execute(
            "SELECT message_id FROM group_seen WHERE session_id = ? AND message_index = ?",
            (session_id, index),
        ).fetchone()
        return None if row is None else str(row[0])

    def mark_seen(self, session_id: str, index: int, message_id: str) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO group_seen (session_id, message_index, message_id) VALUES (?, ?, ?)",
            (session_id, index, message_id),
        )

    # ---- group names, verification, device keys seen ---------------------------------------------

    def meta(self, group_id: str) -> dict[str, Any] | None:
        return self._get_record("group_meta", "group_id", group_id)

    def save_meta(self, group_id: str, record: dict[str, Any]) -> None:
        self._set_record("group_meta", "group_id", group_id, record)

    def verification(self, username: str) -> dict[str, Any] | None:
        return self._get_record("verification", "username", username)

    def save_verification(self, username: str, record: dict[str, Any]) -> None:
        self._set_record("verification", "username", username, record)

    def seen_keys(self, username: str) -> dict[str, Any] | None:
        """device id -> DeviceKeys (as JSON) last seen in the user's device list."""
        return self._get_record("seen_device_keys", "username", username)

    def save_seen_keys(self, username: str, record: dict[str, Any]) -> None:
        self._set_record("seen_device_keys", "username", username, record)

"""Device state in a local SQLite file. Secrets never touch the file in the clear: the passphrase
derives (scrypt) a master key; vodozemac pickles are encrypted by vodozemac with a derived pickle key,
and everything else secret (the device credential, message history) with AES-256-GCM under a derived
data key. A wrong passphrase is detected before anything is decrypted.

The file's layout is versioned per component (the device tables here, the group tables in `group_store`):
`migrate` applies each component's ordered migrations at open, so a store written by older code opens and
is brought up to date; a store from newer code is refused rather than misread."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from vigil.errors import StorageError, ValidationError

__all__ = [
    "DEVICE_MIGRATIONS",
    "DeviceStore",
    "Migration",
    "StoreCorrupted",
    "StoredDevice",
    "StoredSession",
    "migrate",
]


@dataclass(frozen=True, slots=True)
class Migration:
    """One step of a component's layout: `version` is what the component is at once `statements` ran."""

    version: int
    description: str
    statements: tuple[str, ...]


# Version 1 is the layout the unversioned stores (version 0) already have; `IF NOT EXISTS` lets it run
# over them unchanged and create everything in a new file.
DEVICE_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "device tables: secrets, Olm sessions, devices, processed ids, history",
        (
            "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL)",
            "CREATE TABLE IF NOT EXISTS sessions (session_id TEXT PRIMARY KEY, peer_device TEXT NOT NULL,"
            " pickle TEXT NOT NULL, last_used_ms INTEGER NOT NULL)",
            "CREATE INDEX IF NOT EXISTS ix_sessions_peer ON sessions (peer_device, last_used_ms)",
            "CREATE TABLE IF NOT EXISTS devices (username TEXT NOT NULL, device_id TEXT NOT NULL,"
            " curve25519 TEXT NOT NULL, ed25519 TEXT NOT NULL, first_seen_ms INTEGER NOT NULL,"
            " PRIMARY KEY (username, device_id))",
            "CREATE TABLE IF NOT EXISTS processed (sender TEXT NOT NULL, message_id TEXT NOT NULL,"
            " PRIMARY KEY (sender, message_id))",
            "CREATE TABLE IF NOT EXISTS history (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
            " conversation TEXT NOT NULL, sender TEXT NOT NULL, message_id TEXT NOT NULL,"
            " record BLOB NOT NULL, UNIQUE (sender, message_id))",
            "CREATE INDEX IF NOT EXISTS ix_history_conversation ON history (conversation, seq)",
        ),
    ),
    # The row of a consumed event stays, without its event, so a redelivery of that (sender, message id)
    # is never handed to the app again.
    Migration(
        2,
        "inbox: received events kept (sealed) until the app has consumed them",
        (
            "CREATE TABLE inbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, sender TEXT NOT NULL,"
            " message_id TEXT NOT NULL, event BLOB, UNIQUE (sender, message_id))",
            "CREATE INDEX ix_inbox_unconsumed ON inbox (seq) WHERE event IS NOT NULL",
        ),
    ),
    # The server deletes a blob once every recipient device fetched it, so a report can reveal a
    # received attachment (and have it verify) only if the device kept it.
    Migration(
        3,
        "received attachments kept (sealed) so a report can reveal them",
        (
            "CREATE TABLE attachments (sender TEXT NOT NULL, message_id TEXT NOT NULL,"
            " data BLOB NOT NULL, PRIMARY KEY (sender, message_id))",
        ),
    ),
)


def migrate(db: sqlite3.Connection, component: str, migrations: tuple[Migration, ...]) -> int:
    """Brings `component`'s tables to the last of `migrations` (ordered, versions 1, 2, ...), each step in
    its own transaction with the version it reaches; returns the version before. Raises StorageError when
    the file was written by a newer Vigil (a version past the last migration known here)."""
    if [m.version for m in migrations] != list(range(1, len(migrations) + 1)):
        raise AssertionError(f"{component} migrations must be numbered 1..n in order")
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
    )
    row = db.execute("SELECT version FROM schema_version WHERE component = ?", (component,)).fetchone()
    found = 0 if row is None else int(row[0])
    if found > len(migrations):
        raise StorageError(
            f"this device store's {component} data is at schema version {found}, newer than the "
            f"{len(migrations)} this version of Vigil knows; update Vigil to open it"
        )
    for migration in migrations[found:]:
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in migration.statements:
                db.execute(statement)
            db.execute(
                "INSERT OR REPLACE INTO schema_version (component, version) VALUES (?, ?)",
                (component, migration.version),
            )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    return found


_VERIFIER = b"vigil-store-verifier-v1"
_SCRYPT_N = 2**15
MIN_PASSPHRASE_CHARS = 8


@dataclass(frozen=True, slots=True)
class StoredSession:
    session_id: str
    peer_device: str
    pickle: str
    last_used_ms: int


@dataclass(frozen=True, slots=True)
class StoredDevice:
    username: str
    device_id: str
    curve25519: str
    ed25519: str


def _attachment_context(sender: str, message_id: str) -> bytes:
    return b"attachment\x00" + sender.encode() + b"\x00" + message_id.encode()


class StoreCorrupted(StorageError):
    """The device store file is damaged (not the passphrase's fault); names the file."""

    code = "store_corrupted"

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(
            f"the device store {path} is corrupted ({why}); restore it from a backup or link a new device"
        )
        self.path = path


def _key_check_sum(salt: bytes, verifier: bytes) -> bytes:
    return hashlib.sha256(b"vigil-store-key-check-v1" + salt + verifier).digest()


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"vigil-store-" + purpose).derive(
        master
    )


class DeviceStore:
    """Raises StorageError on a wrong passphrase; ValidationError on a passphrase that is too short."""

    def __init__(self, path: Path, passphrase: str) -> None:
        if len(passphrase) < MIN_PASSPHRASE_CHARS:
            raise ValidationError(f"the passphrase needs at least {MIN_PASSPHRASE_CHARS} characters")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        try:
            self._db = sqlite3.connect(path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            if (check := self._db.execute("PRAGMA quick_check(1)").fetchone()[0]) != "ok":
                raise StoreCorrupted(path, check)
            migrate(self._db, "device", DEVICE_MIGRATIONS)
            salt = self._meta_raw("salt")
            verifier = self._meta_raw("verifier")
            checksum = self._meta_raw("key_check_sum")
        except sqlite3.DatabaseError as error:  # not an SQLite file, or a damaged one
            raise StoreCorrupted(path, str(error)) from error
        if salt is None:
            salt = os.urandom(16)
            self._set_meta_raw("salt", salt)
        elif verifier is not None and checksum is not None and checksum != _key_check_sum(salt, verifier):
            # A wrong passphrase and a damaged salt or verifier look the same to the cipher; this
            # unkeyed sum tells them apart, so damage is not blamed on the passphrase.
            raise StoreCorrupted(path, "its key check does not match its checksum")
        master = Scrypt(salt=salt, length=32, n=_SCRYPT_N, r=8, p=1).derive(passphrase.encode())
        self.pickle_key = _derive(master, b"pickle")
        self._data = AESGCM(_derive(master, b"data"))
        if verifier is None:
            verifier = self.seal(_VERIFIER, b"verifier")
            self._set_meta_raw("verifier", verifier)
        else:
            try:
                opened = self._data.decrypt(verifier[:12], verifier[12:], b"verifier")
            except (InvalidTag, ValueError) as error:
                raise StorageError("local store does not open with this passphrase") from error
            if opened != _VERIFIER:
                raise StoreCorrupted(path, "its key check holds an unexpected value")
        if checksum is None:  # stores written before the sum existed get it at their first good open
            self._set_meta_raw("key_check_sum", _key_check_sum(salt, verifier))

    def close(self) -> None:
        self._db.close()

    @property
    def connection(self) -> sqlite3.Connection:
        """For feature modules (groups, verification) that keep their own tables in this file; they write
        inside `transaction()` and seal secrets with `seal`."""
        return self._db

    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._data.encrypt(nonce, plaintext, context)

    def open_sealed(self, sealed: bytes, context: bytes) -> bytes:
        """Raises StoreCorrupted if the data does not authenticate: the passphrase was already proven
        right at open, so the value was damaged or altered."""
        try:
            return self._data.decrypt(sealed[:12], sealed[12:], context)
        except (InvalidTag, ValueError) as error:
            raise StoreCorrupted(self.path, "a stored value does not authenticate") from error

    def _meta_raw(self, name: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else bytes(row[0])

    def _set_meta_raw(self, name: str, value: bytes) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))

    def get_secret(self, name: str) -> str | None:
        raw = self._meta_raw(name)
        return None if raw is None else self.open_sealed(raw, name.encode()).decode()

    def set_secret(self, name: str, value: str) -> None:
        self._set_meta_raw(name, self.seal(value.encode(), name.encode()))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Groups writes so that a crash leaves all or none of them."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def save_session(self, session: StoredSession) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO sessions (session_id, peer_device, pickle, last_used_ms)"
            " VALUES (?, ?, ?, ?)",
            (session.session_id, session.peer_device, session.pickle, session.last_used_ms),
        )

    def sessions_for(self, peer_device: str) -> list[StoredSession]:
        """Most recently used first."""
        rows = self._db.execute(
            "SELECT session_id, peer_device, pickle, last_used_ms FROM sessions WHERE peer_device = ?"
            " ORDER BY last_used_ms DESC",
            (peer_device,),
        ).fetchall()
        return [StoredSession(*row) for row in rows]

    def all_sessions(self) -> list[StoredSession]:
        rows = self._db.execute(
            "SELECT session_id, peer_device, pickle, last_used_ms FROM sessions"
        ).fetchall()
        return [StoredSession(*row) for row in rows]

    def save_device(self, device: StoredDevice, now_ms: int) -> None:
        self._db.execute(
            "INSERT INTO devices (username, device_id, curve25519, ed25519, first_seen_ms)"
            " VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (username, device_id) DO UPDATE SET curve25519 = excluded.curve25519,"
            " ed25519 = excluded.ed25519",
            (device.username, device.device_id, device.curve25519, device.ed25519, now_ms),
        )

    def remove_device(self, username: str, device_id: str) -> None:
        self._db.execute("DELETE FROM devices WHERE username = ? AND device_id = ?", (username, device_id))

    def devices_of(self, username: str) -> list[StoredDevice]:
        rows = self._db.execute(
            "SELECT username, device_id, curve25519, ed25519 FROM devices WHERE username = ?"
            " ORDER BY device_id",
            (username,),
        ).fetchall()
        return [StoredDevice(*row) for row in rows]

    def is_processed(self, sender: str, message_id: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM processed WHERE sender = ? AND message_id = ?", (sender, message_id)
        ).fetchone()
        return row is not None

    def mark_processed(self, sender: str, message_id: str) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO processed (sender, message_id) VALUES (?, ?)", (sender, message_id)
        )

    def add_history(self, conversation: str, sender: str, message_id: str, record: dict[str, Any]) -> None:
        sealed = self.seal(json.dumps(record).encode(), b"history")
        self._db.execute(
            "INSERT OR IGNORE INTO history (conversation, sender, message_id, record) VALUES (?, ?, ?, ?)",
            (conversation, sender, message_id, sealed),
        )

    def keep_server_tag(self, sender: str, message_id: str, franking_tag: str, server_ts_ms: int) -> None:
        """Adds the server's franking tag and timestamp to the history record of a message this device
        sent, so a report can prove it from the tag alone once the server has deleted its delivery record
        (as for received messages). No record, nothing changes."""
        with self.transaction():
            row = self._db.execute(
                "SELECT seq, record FROM history WHERE sender = ? AND message_id = ?", (sender, message_id)
            ).fetchone()
            if row is None:
                return
            record = json.loads(self.open_sealed(bytes(row[1]), b"history"))
            record.update(franking_tag=franking_tag, server_ts_ms=server_ts_ms)
            sealed = self.seal(json.dumps(record).encode(), b"history")
            self._db.execute("UPDATE history SET record = ? WHERE seq = ?", (sealed, row[0]))

    def keep_attachment(self, sender: str, message_id: str, data: bytes) -> None:
        """Keeps a received attachment's plaintext (sealed, bound to its message) for a later report."""
        sealed = self.seal(data, _attachment_context(sender, message_id))
        self._db.execute(
            "INSERT OR IGNORE INTO attachments (sender, message_id, data) VALUES (?, ?, ?)",
            (sender, message_id, sealed),
        )

    def attachment(self, sender: str, message_id: str) -> bytes | None:
        row = self._db.execute(
            "SELECT data FROM attachments WHERE sender = ? AND message_id = ?", (sender, message_id)
        ).fetchone()
        return (
            None if row is None else self.open_sealed(bytes(row[0]), _attachment_context(sender, message_id))
        )

    def keep_event(self, sender: str, message_id: str, record: dict[str, Any]) -> None:
        """Keeps an event for the app until `mark_consumed`; a second event for the same (sender, message
        id), consumed or not, is ignored."""
        sealed = self.seal(json.dumps(record).encode(), b"inbox")
        self._db.execute(
            "INSERT OR IGNORE INTO inbox (sender, message_id, event) VALUES (?, ?, ?)",
            (sender, message_id, sealed),
        )

    def unconsumed_events(self) -> list[tuple[int, dict[str, Any]]]:
        """(sequence number, record) of every event the app has not consumed yet, oldest first."""
        rows = self._db.execute(
            "SELECT seq, event FROM inbox WHERE event IS NOT NULL ORDER BY seq"
        ).fetchall()
        return [(int(seq), json.loads(self.open_sealed(bytes(event), b"inbox"))) for seq, event in rows]

    def mark_consumed(self, seqs: list[int]) -> None:
        with self.transaction():
            self._db.executemany("UPDATE inbox SET event = NULL WHERE seq = ?", [(seq,) for seq in seqs])

    def history(self, conversation: str, limit: int = 50) -> list[dict[str, Any]]:
        """The last `limit` records of a conversation, oldest first."""
        rows = self._db.execute(
            "SELECT record FROM history WHERE conversation = ? ORDER BY seq DESC LIMIT ?",
            (conversation, limit),
        ).fetchall()
        records: list[dict[str, Any]] = [json.loads(self.open_sealed(bytes(r[0]), b"history")) for r in rows]
        return records[::-1]

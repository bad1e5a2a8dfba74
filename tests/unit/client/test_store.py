from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from vigil.client.store import DeviceStore, StoreCorrupted, StoredDevice
from vigil.errors import StorageError, ValidationError


def test_secrets_and_history_are_encrypted_at_rest(tmp_path: Path) -> None:
    store = DeviceStore(tmp_path / "s.db", "a long passphrase")
    store.set_secret("credential", "SECRET-CREDENTIAL-VALUE")
    store.add_history("bob", "alice", "m1", {"payload": {"body": "SECRET-HISTORY-TEXT"}})
    assert store.get_secret("credential") == "SECRET-CREDENTIAL-VALUE"
    assert store.history("bob") == [{"payload": {"body": "SECRET-HISTORY-TEXT"}}]
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("s.db*"))
    assert b"SECRET-CREDENTIAL-VALUE" not in raw and b"SECRET-HISTORY-TEXT" not in raw


def test_wrong_or_short_passphrase(tmp_path: Path) -> None:
    DeviceStore(tmp_path / "s.db", "a long passphrase").close()
    with pytest.raises(StorageError):
        DeviceStore(tmp_path / "s.db", "another long passphrase")
    with pytest.raises(ValidationError):
        DeviceStore(tmp_path / "t.db", "")
    reopened = DeviceStore(tmp_path / "s.db", "a long passphrase")
    assert reopened.get_secret("missing") is None


def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    store = DeviceStore(tmp_path / "s.db", "a long passphrase")
    with pytest.raises(RuntimeError), store.transaction():
        store.save_device(StoredDevice("bob", "B1", "c", "e"), 1)
        raise RuntimeError("crash mid-way")
    assert store.devices_of("bob") == []
    with store.transaction():
        store.mark_processed("bob", "m1")
    assert store.is_processed("bob", "m1") and not store.is_processed("bob", "m2")


def _flip(path: Path, needle: bytes) -> None:
    """Flips one bit of the first byte of `needle`'s row value in the file (the store must be closed)."""
    data = bytearray(path.read_bytes())
    data[data.index(needle)] ^= 0x01
    path.write_bytes(bytes(data))


def _checkpointed(path: Path, passphrase: str) -> None:
    """A store whose meta rows are in the main file (WAL checkpointed on close)."""
    store = DeviceStore(path, passphrase)
    store.set_secret("credential", "c" * 40)
    store.close()


def test_a_wrong_passphrase_is_not_called_corruption(tmp_path: Path) -> None:
    _checkpointed(tmp_path / "s.db", "a long passphrase")
    with pytest.raises(StorageError, match="does not open with this passphrase") as raised:
        DeviceStore(tmp_path / "s.db", "another long passphrase")
    assert not isinstance(raised.value, StoreCorrupted)


def test_a_file_that_is_not_a_store_is_reported_as_corrupted_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"this is not an sqlite file at all" * 100)
    with pytest.raises(StoreCorrupted, match="corrupted") as raised:
        DeviceStore(path, "a long passphrase")
    assert str(path) in str(raised.value) and raised.value.code == "store_corrupted"
    assert "\n" not in str(raised.value) and "passphrase" not in str(raised.value)


def test_a_flipped_byte_in_the_key_check_is_corruption_not_a_wrong_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = DeviceStore(path, "a long passphrase")
    salt = store._meta_raw("salt")
    store.close()
    assert salt is not None
    _flip(path, salt)
    with pytest.raises(StoreCorrupted, match=str(path)):
        DeviceStore(path, "a long passphrase")


def test_a_flipped_byte_in_a_sealed_value_is_corruption(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = DeviceStore(path, "a long passphrase")
    store.set_secret("credential", "c" * 40)
    sealed = store._meta_raw("credential")
    store.close()
    assert sealed is not None
    _flip(path, sealed[20:40])
    reopened = DeviceStore(path, "a long passphrase")
    with pytest.raises(StoreCorrupted, match="does not authenticate"):
        reopened.get_secret("credential")
    reopened.close()


def test_a_store_written_before_the_key_check_sum_gets_one_at_its_first_open(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    DeviceStore(path, "a long passphrase").close()
    older = DeviceStore(path, "a long passphrase")
    older.connection.execute("DELETE FROM meta WHERE name = 'key_check_sum'")
    older.close()
    DeviceStore(path, "a long passphrase").close()
    with pytest.raises(StorageError, match="passphrase"):
        DeviceStore(path, "another long passphrase")
    assert DeviceStore(path, "a long passphrase")._meta_raw("key_check_sum") is not None


def test_received_attachments_are_kept_sealed_and_bound_to_their_message(tmp_path: Path) -> None:
    store = DeviceStore(tmp_path / "s.db", "a long passphrase")
    picture = b"\x89PNG a received picture nobody else may read" * 4
    with store.transaction():
        store.keep_attachment("mallory", "m-1", picture)
    assert store.attachment("mallory", "m-1") == picture
    assert store.attachment("mallory", "m-2") is None and store.attachment("eve", "m-1") is None
    store.close()
    assert b"nobody else may read" not in b"".join(p.read_bytes() for p in tmp_path.glob("s.db*"))
    # A sealed attachment moved to another message does not open: it is bound to (sender, message id).
    db = sqlite3.connect(tmp_path / "s.db")
    with db:
        db.execute("UPDATE attachments SET message_id = 'm-2'")
    db.close()
    reopened = DeviceStore(tmp_path / "s.db", "a long passphrase")
    with pytest.raises(StoreCorrupted):
        reopened.attachment("mallory", "m-2")

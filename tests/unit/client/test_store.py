from __future__ import annotations

from pathlib import Path

import pytest

from vigil.client.store import DeviceStore, StoredDevice
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

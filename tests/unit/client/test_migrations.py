"""Stores written before the schema was versioned (fixtures/*-v0.db, made by fixtures/make_v0_stores.py with
the code of that time) open, migrate, and keep their sessions, history and hash list usable; a store from a
newer Vigil is refused."""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from vigil.client.client import Client
from vigil.client.group_store import GROUP_MIGRATIONS
from vigil.client.safety import STATE_FORMAT
from vigil.client.store import DEVICE_MIGRATIONS, DeviceStore, Migration, migrate
from vigil.errors import StorageError
from vigil.protocol.group_wire import group_conversation
from vigil.protocol.wire import Delivery, MessageKind

FIXTURES = Path(__file__).parent / "fixtures"
EXPECTED = json.loads((FIXTURES / "v0-expected.json").read_text())
PASSPHRASE = EXPECTED["passphrase"]
EXPECTED_TAG = base64.b64encode(b"t" * 32).decode()


def _copy(tmp_path: Path, name: str) -> Path:
    target = tmp_path / f"{name}.db"
    shutil.copy(FIXTURES / f"{name}-v0.db", target)
    return target


def _versions(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT component, version FROM schema_version").fetchall())


def test_fixtures_are_unversioned() -> None:
    with sqlite3.connect(FIXTURES / "alice-v0.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "schema_version" not in tables and {"sessions", "history", "group_inbound"} <= tables


async def test_a_v0_store_opens_migrates_and_its_sessions_still_work(tmp_path: Path) -> None:
    alice = await Client.open(_copy(tmp_path, "alice"), PASSPHRASE)
    bob = await Client.open(_copy(tmp_path, "bob"), PASSPHRASE)
    assert _versions(alice.store.path) == {"device": len(DEVICE_MIGRATIONS), "groups": len(GROUP_MIGRATIONS)}
    assert [r["payload"]["body"] for r in bob.history("alice")] == ["hello from v0", "reply from v0"]
    assert bob.store.is_processed("alice", EXPECTED["hello_id"])

    # 1:1: alice's stored Olm session still encrypts, and bob's stored session still decrypts it.
    [bob_device] = alice.core.known_devices("bob")
    assert bob_device.curve25519 == EXPECTED["bob_curve25519"]
    payload = alice.engine.build_payload("bob", MessageKind.TEXT, 3, body="after the migration")
    request, changes = alice.engine.encrypt(payload, [bob_device], [])
    assert request.ciphertexts[0].type == 1  # an established session, not a new pre-key session
    alice.core.commit(changes)
    delivery = Delivery(
        delivery_id=1,
        message_id=request.id,
        sender="alice",
        sender_device="A1",
        conversation="bob",
        kind=request.kind,
        commitment=request.commitment,
        franking_tag=EXPECTED_TAG,
        server_ts_ms=9,
        type=request.ciphertexts[0].type,
        body=request.ciphertexts[0].body,
    )
    [alice_device] = bob.core.known_devices("alice")
    opened = bob.engine.open(delivery, alice_device, bob.store.pickle_key)
    assert opened.payload.body == "after the migration"

    # Group: alice's stored outbound Megolm session seals, bob's stored inbound session opens.
    group_id = EXPECTED["group_id"]
    record = alice.groups.store.outbound(group_id)
    assert record is not None and record.stats.shared_with == frozenset({"bob/B1"})
    conversation = group_conversation(group_id)
    group_payload = alice.engine.build_payload(conversation, MessageKind.TEXT, 4, body="group")
    group_request, _ = alice.engine.seal_group(group_id, record, group_payload, [bob_device], [])
    group_delivery = delivery.model_copy(
        update={
            "message_id": group_request.id,
            "conversation": group_conversation(group_id),
            "commitment": group_request.commitment,
            "type": 2,
            "body": group_request.body,
        }
    )
    opened_group = bob.engine.open_group(group_delivery, group_id, bob.groups.store)
    assert opened_group.payload.body == "group"
    assert alice.groups.meta(group_id) is not None and alice.groups.meta(group_id).name == "v0 group"  # type: ignore[union-attr]

    # The v0 hash list (no format number) was read, kept and rewritten in the current format.
    assert alice.safety.state is not None and alice.safety.state.version == 3
    assert json.loads(alice.store.get_secret("hashlist_state") or "{}")["format"] == STATE_FORMAT
    await alice.close()
    await bob.close()


async def test_reopening_a_migrated_store_changes_nothing(tmp_path: Path) -> None:
    path = _copy(tmp_path, "bob")
    (await Client.open(path, PASSPHRASE)).store.close()
    before = _versions(path)
    reopened = await Client.open(path, PASSPHRASE)
    assert _versions(path) == before
    assert len(reopened.history("alice")) == 2
    await reopened.close()


def test_a_store_from_a_newer_vigil_is_refused(tmp_path: Path) -> None:
    path = _copy(tmp_path, "alice")
    DeviceStore(path, PASSPHRASE).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE schema_version SET version = 99 WHERE component = 'device'")
    with pytest.raises(StorageError, match="schema version 99, newer"):
        DeviceStore(path, PASSPHRASE)


async def test_a_hash_list_from_a_newer_vigil_is_refused(tmp_path: Path) -> None:
    path = _copy(tmp_path, "alice")
    store = DeviceStore(path, PASSPHRASE)
    raw = json.loads(store.get_secret("hashlist_state") or "{}")
    with store.transaction():
        store.set_secret("hashlist_state", json.dumps(raw | {"format": STATE_FORMAT + 1}))
    store.close()
    with pytest.raises(StorageError, match="format 2, newer"):
        await Client.open(path, PASSPHRASE)


def test_migrations_run_in_order_once_and_a_failed_step_leaves_the_version(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    steps = (
        Migration(1, "a", ("CREATE TABLE a (x INTEGER)",)),
        Migration(2, "b", ("INSERT INTO a VALUES (2)",)),
    )
    assert migrate(db, "demo", steps) == 0
    assert migrate(db, "demo", steps) == 2  # nothing ran again
    assert db.execute("SELECT x FROM a").fetchall() == [(2,)]
    broken = (*steps, Migration(3, "c", ("INSERT INTO a VALUES (3)", "INSERT INTO missing VALUES (1)")))
    with pytest.raises(sqlite3.OperationalError):
        migrate(db, "demo", broken)
    assert db.execute("SELECT version FROM schema_version WHERE component = 'demo'").fetchone() == (2,)
    assert db.execute("SELECT x FROM a").fetchall() == [(2,)]  # the failed step's first statement rolled back

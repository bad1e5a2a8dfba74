"""DeviceCore: one transaction per commit, sessions on demand, device lists and their watchers, keys."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest
from fakes import FakeServer, new_device

from vigil.client.device import ONE_TIME_KEY_TARGET, REFILL_BELOW, DeviceCore, HistoryEntry
from vigil.client.engine import Changes
from vigil.errors import TamperError
from vigil.protocol.olm import DeviceAccount
from vigil.protocol.wire import DeviceInfo


async def test_refill_tops_up_only_below_the_threshold(tmp_path: Path) -> None:
    server = FakeServer()
    alice = await new_device(server, tmp_path, "alice")
    assert len(server.device("alice", "ALICE1").one_time_keys) == ONE_TIME_KEY_TARGET
    assert server.device("alice", "ALICE1").fallback is not None
    uploads = sum(1 for m, _ in server.calls if m == "upload_keys")
    server.device("alice", "ALICE1").one_time_keys[REFILL_BELOW:] = []
    assert await alice.refill_keys() == REFILL_BELOW  # at the threshold: nothing uploaded
    del server.device("alice", "ALICE1").one_time_keys[0]
    assert await alice.refill_keys() == ONE_TIME_KEY_TARGET
    assert sum(1 for m, _ in server.calls if m == "upload_keys") == uploads + 1


async def test_ensure_sessions_claims_once_and_persists_sessions_and_devices(tmp_path: Path) -> None:
    server = FakeServer()
    alice = await new_device(server, tmp_path, "alice")
    await new_device(server, tmp_path, "bob")
    await new_device(server, tmp_path, "bob", "BOB2")
    targets = await alice.targets("bob")
    assert sorted(d.device_id for d in targets) == ["BOB1", "BOB2"]
    await alice.ensure_sessions(targets)
    await alice.ensure_sessions(targets)
    assert [m for m, _ in server.calls].count("claim_keys") == 1
    assert sorted(s.peer_device for s in alice.store.all_sessions()) == ["BOB1", "BOB2"]
    assert [d.device_id for d in alice.store.devices_of("bob")] == ["BOB1", "BOB2"]


async def test_commit_writes_all_or_nothing(tmp_path: Path) -> None:
    server = FakeServer()
    alice = await new_device(server, tmp_path, "alice")
    entry = HistoryEntry("bob", "alice", "m1", {"payload": {"message_id": "m1"}})
    with pytest.raises(sqlite3.ProgrammingError):  # the last write fails: the earlier ones roll back
        alice.commit(Changes(seen=[("s", 0, "m1")]), history=entry, processed=("alice", object()))  # type: ignore[arg-type]
    assert alice.store.history("bob") == [] and alice.tables.seen_message("s", 0) is None
    alice.commit(Changes(seen=[("s", 0, "m1")]), history=entry, processed=("alice", "m1"))
    assert alice.store.history("bob") == [entry.record] and alice.tables.seen_message("s", 0) == "m1"
    assert alice.store.is_processed("alice", "m1")


async def test_device_list_watchers_see_other_devices_and_forged_keys_are_refused(tmp_path: Path) -> None:
    server = FakeServer()
    alice = await new_device(server, tmp_path, "alice")
    await new_device(server, tmp_path, "alice", "ALICE2")
    seen: list[tuple[str, list[str]]] = []
    alice.watch_devices(lambda username, infos: seen.append((username, [i.device_id for i in infos])))
    assert [d.device_id for d in await alice.refresh_devices("alice")] == ["ALICE2"]
    assert seen == [("alice", ["ALICE2"])]  # never this device itself
    other = DeviceAccount().device_keys()
    forged = DeviceInfo(device_id="X", keys=other.model_copy(update={"ed25519": DeviceAccount().ed25519}))
    with pytest.raises(TamperError):
        alice.replace_devices("mallory", [forged])
    assert alice.store.devices_of("mallory") == [] and seen == [("alice", ["ALICE2"])]


async def test_network_errors_are_retried_and_the_last_one_raised(tmp_path: Path) -> None:
    server = FakeServer()
    alice: DeviceCore = await new_device(server, tmp_path, "alice")
    attempts: list[int] = []

    async def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise httpx.ConnectError("down")
        return "ok"

    assert await alice.with_retries(flaky) == "ok" and len(attempts) == 3

    async def down() -> str:
        raise httpx.ConnectError("down")

    with pytest.raises(httpx.ConnectError):
        await alice.with_retries(down)

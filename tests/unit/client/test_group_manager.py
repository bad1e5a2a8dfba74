"""Groups over a fake transport with real Megolm: sharing, receive checks, rotation, and no state change
on a rejected delivery."""

from __future__ import annotations

import base64
from pathlib import Path

from fakes import FakeServer, new_client, start

from vigil.client.events import GroupUpdated, MessageEvent, RejectedDelivery
from vigil.protocol.group_wire import parse_control_payload, unpack_group_ciphertext


def _flip(value: str, index: int) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def _to_device_calls(server: FakeServer) -> int:
    return sum(1 for method, _ in server.calls if method == "to_device")


async def test_group_message_reaches_members_and_the_key_is_shared_once(tmp_path: Path) -> None:
    server = FakeServer()
    alice = await start(new_client(server, tmp_path, "alice"))
    bob = await start(new_client(server, tmp_path, "bob"))
    info = await alice.groups.create(["bob"], name="climbing", topic="sundays")
    await alice.groups.send_text(info.group_id, "first")
    await alice.groups.send_text(info.group_id, "second")
    assert _to_device_calls(server) == 2  # the name once, the room key once (not once per message)
    events = await bob.fetch()
    assert [e for e in events if isinstance(e, GroupUpdated)] == [
        GroupUpdated(info.group_id, "climbing", "sundays", "alice")
    ]
    texts = [(e.conversation, e.text, e.outgoing) for e in events if isinstance(e, MessageEvent)]
    assert texts == [(f"group:{info.group_id}", "first", False), (f"group:{info.group_id}", "second", False)]
    history = bob.history(f"group:{info.group_id}")
    assert [r["payload"]["body"] for r in history] == ["first", "second"]
    assert all("franking_tag" in r for r in history)  # a report can prove what the server relayed


async def test_tampered_or_replayed_group_message_is_rejected_and_changes_nothing(tmp_path: Path) -> None:
    server = FakeServer()
    alice = await start(new_client(server, tmp_path, "alice"))
    bob = await start(new_client(server, tmp_path, "bob"))
    info = await alice.groups.create(["bob"])
    await alice.groups.send_text(info.group_id, "genuine")
    bob_device = server.device("bob", "BOB1")
    genuine = bob_device.queue[-1]
    forged = genuine.model_copy(update={"commitment": _flip(genuine.commitment, 0)})
    replayed = genuine.model_copy(update={"message_id": "00000000-0000-4000-8000-000000000000"})
    bob_device.queue[-1] = forged
    [*_, rejected] = await bob.fetch()
    assert isinstance(rejected, RejectedDelivery) and "commitment" in rejected.reason
    session_id = unpack_group_ciphertext(base64.b64decode(genuine.body)).session_id
    assert bob.groups.store.seen_message(session_id, 0) is None  # the failed open marked nothing seen
    bob_device.queue.append(genuine)
    [event] = await bob.fetch()
    assert isinstance(event, MessageEvent) and event.text == "genuine"
    assert bob.groups.store.seen_message(session_id, 0) == genuine.message_id
    bob_device.queue.append(replayed)
    [again] = await bob.fetch()
    assert isinstance(again, RejectedDelivery) and again.reason == "replayed group message"


async def test_removing_a_member_rotates_the_session(tmp_path: Path) -> None:
    server = FakeServer()
    alice = await start(new_client(server, tmp_path, "alice"))
    await start(new_client(server, tmp_path, "bob"))
    carol = await start(new_client(server, tmp_path, "carol"))
    info = await alice.groups.create(["bob", "carol"])
    await alice.groups.send_text(info.group_id, "to both")
    before = alice.groups.store.outbound(info.group_id)
    await alice.groups.remove_member(info.group_id, "bob")
    assert alice.groups.store.outbound(info.group_id) is None
    await alice.groups.send_text(info.group_id, "carol only")
    after = alice.groups.store.outbound(info.group_id)
    assert before is not None and after is not None
    assert after.session.session_id != before.session.session_id
    assert after.stats.shared_with == frozenset({"carol/CAROL1"})
    assert [e.text for e in await carol.fetch() if isinstance(e, MessageEvent)] == ["to both", "carol only"]


async def test_a_room_key_from_a_device_that_did_not_create_it_is_rejected(tmp_path: Path) -> None:
    server = FakeServer()
    alice = await start(new_client(server, tmp_path, "alice"))
    bob = await start(new_client(server, tmp_path, "bob"))
    mallory = await start(new_client(server, tmp_path, "mallory"))
    info = await alice.groups.create(["bob", "mallory"])
    await alice.groups.send_text(info.group_id, "hello")
    alice_device = await mallory.core.sender_device("alice", "ALICE1")
    assert alice_device is not None
    [share] = [d for d in server.device("mallory", "MALLORY1").queue if d.kind.value == "control"]
    # mallory forwards alice's key share to bob as her own message: the creator check refuses it
    decrypted = mallory.engine.decrypt_olm(share, alice_device, mallory.store.pickle_key)
    await mallory.core.send_to_devices(
        f"group:{info.group_id}",
        await mallory.refresh_devices("bob"),
        [parse_control_payload(decrypted.plaintext)],
    )
    server.device("bob", "BOB1").queue = [
        d for d in server.device("bob", "BOB1").queue if d.sender == "mallory"
    ]
    events = await bob.fetch()
    assert [type(e) for e in events] == [RejectedDelivery]
    assert "did not come from the device that created" in events[0].reason  # type: ignore[union-attr]

"""The no-I/O engine: encryption for devices, opening deliveries, and no state change on failure."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from vigil.client.engine import Engine, PeerDevice
from vigil.client.group_store import GroupStore
from vigil.client.store import DeviceStore
from vigil.errors import DecryptionError, TamperError
from vigil.protocol.group_wire import GroupSendRequest
from vigil.protocol.megolm import RotationPolicy
from vigil.protocol.olm import DeviceAccount
from vigil.protocol.wire import ClaimedDevice, Delivery, MessageKind, SendRequest

PICKLE_KEY = b"p" * 32


def _engines() -> tuple[Engine, Engine, PeerDevice, PeerDevice]:
    alice = Engine(DeviceAccount(), "alice", "A1")
    bob = Engine(DeviceAccount(), "bob", "B1")
    otk = bob.account.new_one_time_keys(1)[0]
    bob.account.mark_published()
    keys = bob.account.device_keys()
    claimed = ClaimedDevice(device_id="B1", keys=keys, one_time_key=otk, is_fallback=False)
    [bob_device], _changes = alice.start_sessions("bob", [claimed])
    alice_device = PeerDevice("alice", "A1", alice.account.curve25519, alice.account.ed25519)
    return alice, bob, alice_device, bob_device


def _delivery(request: SendRequest, sender: str = "alice", device: str = "A1", n: int = 1) -> Delivery:
    ciphertext = request.ciphertexts[0]
    return Delivery(
        delivery_id=n,
        message_id=request.id,
        sender=sender,
        sender_device=device,
        conversation=request.to,
        kind=request.kind,
        commitment=request.commitment,
        franking_tag=base64.b64encode(b"t" * 32).decode(),
        server_ts_ms=5,
        type=ciphertext.type,
        body=ciphertext.body,
    )


def _send(alice: Engine, bob_device: PeerDevice, text: str) -> SendRequest:
    payload = alice.build_payload("bob", MessageKind.TEXT, 1, body=text)
    request, changes = alice.encrypt(payload, [bob_device], [])
    assert [c.peer_device for c in changes.sessions] == ["B1"]  # the advanced ratchet, to persist
    return request


def _flip_b64(value: str, index: int) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def test_open_and_accept() -> None:
    alice, bob, alice_device, bob_device = _engines()
    opened = bob.open(_delivery(_send(alice, bob_device, "hello")), alice_device, PICKLE_KEY)
    assert opened.payload.body == "hello" and opened.payload.sender == "alice"
    assert bob.sessions == {}  # nothing applied before accept
    changes = bob.accept(opened)
    assert list(bob.sessions) == ["A1"]
    assert changes.account and [c.peer_device for c in changes.sessions] == ["A1"]


@pytest.mark.parametrize("part", ["ciphertext", "commitment"])
def test_tampered_delivery_is_rejected_and_changes_no_state(part: str) -> None:
    alice, bob, alice_device, bob_device = _engines()
    bob.accept(bob.open(_delivery(_send(alice, bob_device, "first")), alice_device, PICKLE_KEY))
    reply_payload = bob.build_payload("alice", MessageKind.TEXT, 2, body="r")
    reply, _changes = bob.encrypt(reply_payload, [alice_device], [])
    alice.accept(alice.open(_delivery(reply, "bob", "B1"), bob_device, PICKLE_KEY))
    genuine = _delivery(_send(alice, bob_device, "second"), n=2)
    if part == "ciphertext":
        forged = genuine.model_copy(update={"body": _flip_b64(genuine.body, 20)})
        expected: type[Exception] = DecryptionError
    else:
        forged = genuine.model_copy(update={"commitment": _flip_b64(genuine.commitment, 0)})
        expected = TamperError
    before = {peer: [s.pickle(PICKLE_KEY) for s in sessions] for peer, sessions in bob.sessions.items()}
    account, held = bob.account, {peer: list(sessions) for peer, sessions in bob.sessions.items()}
    with pytest.raises(expected):
        bob.open(forged, alice_device, PICKLE_KEY)
    assert bob.account is account and bob.sessions == held
    # pickles are randomised per call, so compare behaviour: the genuine message still opens
    assert set(before) == set(bob.sessions)
    assert bob.open(genuine, alice_device, PICKLE_KEY).payload.body == "second"


def test_delivery_relabelled_to_another_sender_or_conversation_is_rejected() -> None:
    alice, bob, alice_device, bob_device = _engines()
    request = _send(alice, bob_device, "hello")
    with pytest.raises(TamperError):
        bob.open(_delivery(request).model_copy(update={"sender_device": "A2"}), alice_device, PICKLE_KEY)
    with pytest.raises(TamperError):
        bob.open(_delivery(request).model_copy(update={"conversation": "carol"}), alice_device, PICKLE_KEY)
    mallory = PeerDevice("mallory", "A1", alice_device.curve25519, alice_device.ed25519)
    with pytest.raises(TamperError):
        bob.open(_delivery(request, sender="mallory"), mallory, PICKLE_KEY)


def test_encrypting_for_a_device_without_session_fails() -> None:
    alice, _bob, _alice_device, _bob_device = _engines()
    stranger = PeerDevice("carol", "C1", DeviceAccount().curve25519, DeviceAccount().ed25519)
    with pytest.raises(DecryptionError):
        alice.encrypt(alice.build_payload("carol", MessageKind.TEXT, 1, body="x"), [stranger], [])


def test_claimed_device_with_forged_key_signature_is_refused() -> None:
    alice = Engine(DeviceAccount(), "alice", "A1")
    bob = DeviceAccount()
    forged_key = DeviceAccount().new_one_time_keys(1)[0]
    keys = bob.device_keys()
    claimed = ClaimedDevice(device_id="B1", keys=keys, one_time_key=forged_key, is_fallback=False)
    with pytest.raises(TamperError):
        alice.start_sessions("bob", [claimed])
    assert alice.sessions == {}


def _group(
    alice: Engine, bob: Engine, bob_device: PeerDevice, folder: Path
) -> tuple[str, object, GroupStore, DeviceStore]:
    """Alice's outbound session for a group, with its room key accepted by bob into a real GroupStore."""
    group_id = "0" * 31 + "7"
    record, shares, owed = alice.group_session(group_id, None, [bob_device], RotationPolicy(), now_ms=1)
    assert owed == [bob_device] and record.stats.shared_with == frozenset({"bob/B1"})
    store = DeviceStore(folder / "bob.db", "a long passphrase")
    groups = GroupStore(store)
    alice_as_sender = PeerDevice("alice", "A1", alice.account.curve25519, alice.account.ed25519)
    share_delivery = Delivery(
        delivery_id=1,
        message_id="k",
        sender="alice",
        sender_device="A1",
        conversation=f"group:{group_id}",
        kind=MessageKind.CONTROL,
        commitment=base64.b64encode(bytes(32)).decode(),
        franking_tag=base64.b64encode(bytes(32)).decode(),
        server_ts_ms=1,
        type=1,
        body="AAAA",
    )
    changes = bob.accept_room_key(shares[0], share_delivery, alice_as_sender, alice.account.device_keys())
    for inbound in changes.inbound:
        groups.save_inbound(inbound)
    return group_id, record, groups, store


def _group_delivery(request: GroupSendRequest, group_id: str, n: int = 1) -> Delivery:
    return Delivery(
        delivery_id=n,
        message_id=request.id,
        sender="alice",
        sender_device="A1",
        conversation=f"group:{group_id}",
        kind=request.kind,
        commitment=request.commitment,
        franking_tag=base64.b64encode(b"t" * 32).decode(),
        server_ts_ms=5,
        type=2,
        body=request.body,
    )


def test_megolm_opens_with_the_same_franking_check_and_marks_seen_only_on_accept(tmp_path: Path) -> None:
    alice, bob, _alice_device, bob_device = _engines()
    group_id, record, groups, _store = _group(alice, bob, bob_device, tmp_path)
    payload = alice.build_payload(f"group:{group_id}", MessageKind.TEXT, 1, body="to the group")
    request, changes = alice.seal_group(group_id, record, payload, [bob_device], [])  # type: ignore[arg-type]
    assert changes.outbound[group_id].stats.messages_sent == 1
    delivery = _group_delivery(request, group_id)

    forged = delivery.model_copy(update={"commitment": _flip_b64(delivery.commitment, 0)})
    with pytest.raises(TamperError, match="commitment"):
        bob.open_group(forged, group_id, groups)
    relabelled = delivery.model_copy(update={"sender_device": "A2"})
    with pytest.raises(TamperError, match="another group or sender device"):
        bob.open_group(relabelled, group_id, groups)

    opened = bob.open_group(delivery, group_id, groups)
    assert opened.payload.body == "to the group" and groups.seen_message(*opened.group_index) is None  # type: ignore[misc]
    accepted = bob.accept(opened)
    assert accepted.seen == [(*opened.group_index, request.id)]  # type: ignore[misc]
    assert accepted.sessions == [] and not accepted.account


def test_a_room_key_for_another_group_or_from_a_relay_is_refused() -> None:
    alice, bob, _alice_device, bob_device = _engines()
    group_id = "0" * 31 + "7"
    _record, [share], _owed = alice.group_session(group_id, None, [bob_device], RotationPolicy(), now_ms=1)
    delivery = Delivery(
        delivery_id=1,
        message_id="k",
        sender="alice",
        sender_device="A1",
        conversation="group:" + "1" * 32,
        kind=MessageKind.CONTROL,
        commitment=base64.b64encode(bytes(32)).decode(),
        franking_tag=base64.b64encode(bytes(32)).decode(),
        server_ts_ms=1,
        type=1,
        body="AAAA",
    )
    alice_device = PeerDevice("alice", "A1", alice.account.curve25519, alice.account.ed25519)
    with pytest.raises(TamperError, match="another group"):
        bob.accept_room_key(share, delivery, alice_device, alice.account.device_keys())
    relay = PeerDevice("carol", "C1", alice.account.curve25519, alice.account.ed25519)
    own_group = delivery.model_copy(update={"conversation": f"group:{group_id}"})
    with pytest.raises(TamperError, match="did not come from the device that created"):
        bob.accept_room_key(share, own_group, relay, alice.account.device_keys())


def test_group_session_rotates_when_a_device_left() -> None:
    alice, _bob, _alice_device, bob_device = _engines()
    carol = PeerDevice("carol", "C1", DeviceAccount().curve25519, DeviceAccount().ed25519)
    record, shares, _ = alice.group_session("g" * 32, None, [bob_device, carol], RotationPolicy(), now_ms=1)
    assert len(shares) == 2
    policy = RotationPolicy()
    same, none_owed, _ = alice.group_session("g" * 32, record, [bob_device, carol], policy, now_ms=2)
    assert same.session.session_id == record.session.session_id and none_owed == []
    rotated, owed, _ = alice.group_session("g" * 32, record, [carol], RotationPolicy(), now_ms=3)
    assert rotated.session.session_id != record.session.session_id and len(owed) == 1

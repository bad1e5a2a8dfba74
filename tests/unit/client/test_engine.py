"""The no-I/O engine: encryption for devices, opening deliveries, and no state change on failure."""

from __future__ import annotations

import base64

import pytest

from vigil.client.engine import Engine, PeerDevice
from vigil.errors import DecryptionError, TamperError
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

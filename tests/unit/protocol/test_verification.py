from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from vigil.errors import ProtocolError, TamperError, ValidationError
from vigil.protocol.olm import DeviceAccount
from vigil.protocol.verification import (
    SAS_EMOJI,
    SasAccept,
    SasCancel,
    SasCancelCode,
    SasDevice,
    SasEstablished,
    SasKey,
    SasMac,
    SasStart,
    SasStarted,
    parse_sas_message,
    safety_number,
)
from vigil.protocol.wire import DeviceKeys

TXN = "txn_0123456789"


def _flip_b64(text: str, byte: int, bit: int = 0) -> str:
    raw = bytearray(base64.b64decode(text + "=" * (-len(text) % 4)))
    raw[byte] ^= 1 << bit
    return base64.b64encode(bytes(raw)).decode().rstrip("=")


# --- safety numbers ---------------------------------------------------------------------------------------


# Fixed keys so the number is a known answer: changing the construction changes what users compare.
def _fixed_key(seed: int) -> str:
    public = Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32).public_key()
    return base64.b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode().rstrip("=")


KEY_A1, KEY_A2, KEY_B1 = _fixed_key(1), _fixed_key(2), _fixed_key(3)
KNOWN_SAFETY_NUMBER = "720161868684112899574604888344845686277247375799727254821648"


def _valid_key() -> str:
    return DeviceAccount().ed25519


def test_safety_number_shape_and_symmetry() -> None:
    a, b = [_valid_key(), _valid_key()], [_valid_key()]
    forward = safety_number("alice", a, "bob", b)
    backward = safety_number("bob", b, "alice", a)
    assert forward == backward
    assert len(forward.digits) == 60 and forward.digits.isdigit()
    assert len(forward.groups) == 12 and all(len(group) == 5 for group in forward.groups)
    assert str(forward) == " ".join(forward.groups)


def test_safety_number_ignores_key_order_and_duplicates() -> None:
    a1, a2, b1 = _valid_key(), _valid_key(), _valid_key()
    assert safety_number("alice", [a1, a2], "bob", [b1]) == safety_number("alice", [a2, a1, a2], "bob", [b1])


def test_safety_number_changes_with_keys_and_users() -> None:
    a1, a2, b1, other = _valid_key(), _valid_key(), _valid_key(), _valid_key()
    base = safety_number("alice", [a1], "bob", [b1])
    assert safety_number("alice", [a1, a2], "bob", [b1]) != base  # device added
    assert safety_number("alice", [a1], "bob", [other]) != base  # device key replaced
    assert safety_number("alice", [a1], "carol", [b1]) != base  # identity bound to the user id
    assert safety_number("alice", [b1], "bob", [a1]) != base  # keys bound to their owner


def test_safety_number_known_answer() -> None:
    number = safety_number("alice", [KEY_A1, KEY_A2], "bob", [KEY_B1])
    assert number == safety_number("bob", [KEY_B1], "alice", [KEY_A2, KEY_A1])
    assert number.digits == KNOWN_SAFETY_NUMBER


def test_safety_number_matches_typed_input() -> None:
    number = safety_number("alice", [_valid_key()], "bob", [_valid_key()])
    assert number.matches(str(number))
    assert number.matches("\n".join(number.groups))
    wrong = ("1" if number.digits[0] != "1" else "2") + number.digits[1:]
    assert not number.matches(wrong)
    assert not number.matches(number.digits[:-1])


@pytest.mark.parametrize("bad", ["", "short", KEY_A1 + "=", "!" * 43, base64.b64encode(b"x" * 31).decode()])
def test_safety_number_rejects_malformed_keys(bad: str) -> None:
    with pytest.raises(ValidationError):
        safety_number("alice", [bad], "bob", [KEY_B1])


def test_safety_number_rejects_user_without_keys() -> None:
    with pytest.raises(ValidationError):
        safety_number("alice", [], "bob", [KEY_B1])


# --- emoji table ------------------------------------------------------------------------------------------


def test_emoji_table_is_the_matrix_table() -> None:
    assert len(SAS_EMOJI) == 64
    assert [entry.number for entry in SAS_EMOJI] == list(range(64))
    assert len({entry.emoji for entry in SAS_EMOJI}) == 64
    assert len({entry.description for entry in SAS_EMOJI}) == 64
    spot = {
        0: ("🐶", "Dog"),
        21: ("☁️", "Cloud"),
        36: ("👍", "Thumbs Up"),
        53: ("✈️", "Aeroplane"),
        63: ("📌", "Pin"),
    }
    for number, (emoji, description) in spot.items():
        assert (SAS_EMOJI[number].emoji, SAS_EMOJI[number].description) == (emoji, description)


# --- SAS --------------------------------------------------------------------------------------------------


class _Device:
    def __init__(self, user: str, device: str) -> None:
        self.account = DeviceAccount()
        self.sas = SasDevice(user, device, self.account.device_keys())

    @property
    def keys(self) -> DeviceKeys:
        return self.sas.keys


def _run(initiator: _Device, responder: _Device) -> tuple[SasEstablished, SasEstablished]:
    """The honest flow, every message through JSON as it would travel."""

    def wire(message: SasStart | SasAccept | SasKey | SasMac | SasCancel) -> object:
        return parse_sas_message(message.model_dump_json())

    alice = SasStarted.initiate(initiator.sas, transaction_id=TXN)
    start = wire(alice.start_message)
    assert isinstance(start, SasStart)
    bob = SasStarted.respond(responder.sas, start)
    assert bob.accept_message is not None
    accept = wire(bob.accept_message)
    assert isinstance(accept, SasAccept)
    alice_key = wire(alice.receive_accept(accept))
    assert isinstance(alice_key, SasKey)
    bob_established = bob.receive_key(alice_key)
    assert bob_established.own_key_message is not None
    bob_key = wire(bob_established.own_key_message)
    assert isinstance(bob_key, SasKey)
    alice_established = alice.receive_key(bob_key)
    assert alice_established.own_key_message is None
    return alice_established, bob_established


@pytest.fixture
def devices() -> tuple[_Device, _Device]:
    return _Device("alice", "ALICEPHONE"), _Device("bob", "BOBLAPTOP")


def test_honest_sas_matches_and_verifies(devices: tuple[_Device, _Device]) -> None:
    alice_device, bob_device = devices
    alice, bob = _run(alice_device, bob_device)
    assert len(alice.emoji()) == 7
    assert alice.emoji() == bob.emoji()
    assert alice.decimals() == bob.decimals()
    assert all(1000 <= number <= 9191 for number in alice.decimals())
    assert (alice.peer_user, alice.peer_device) == ("bob", "BOBLAPTOP")
    assert (bob.peer_user, bob.peer_device) == ("alice", "ALICEPHONE")

    verified_bob = alice.verify_mac(
        SasMac.model_validate_json(bob.mac_message().model_dump_json()), bob_device.keys
    )
    verified_alice = bob.verify_mac(alice.mac_message(), alice_device.keys)
    assert (verified_bob.user_id, verified_bob.device_id, verified_bob.keys) == (
        "bob",
        "BOBLAPTOP",
        bob_device.keys,
    )
    assert verified_alice.keys == alice_device.keys


def test_different_runs_give_different_strings(devices: tuple[_Device, _Device]) -> None:
    first, _ = _run(*devices)
    second, _ = _run(*devices)
    assert (first.emoji(), first.decimals()) != (second.emoji(), second.decimals())


def test_every_mac_bit_flip_is_detected(devices: tuple[_Device, _Device]) -> None:
    alice_device, bob_device = devices
    alice, bob = _run(alice_device, bob_device)
    mac = bob.mac_message()
    for key_id, value in mac.macs.items():
        for position in range(32):
            tampered = mac.model_copy(update={"macs": mac.macs | {key_id: _flip_b64(value, position, 7)}})
            with pytest.raises(TamperError):
                alice.verify_mac(tampered, bob_device.keys)
    for position in range(32):
        with pytest.raises(TamperError):
            alice.verify_mac(mac.model_copy(update={"keys": _flip_b64(mac.keys, position)}), bob_device.keys)
    assert alice.verify_mac(mac, bob_device.keys).device_id == "BOBLAPTOP"


def test_substituted_device_key_fails_mac(devices: tuple[_Device, _Device]) -> None:
    """The server hands Alice a key of its own for Bob's device; Bob's honest MAC exposes it."""
    alice_device, bob_device = devices
    alice, bob = _run(alice_device, bob_device)
    server_choice = DeviceAccount().device_keys()
    with pytest.raises(TamperError):
        alice.verify_mac(bob.mac_message(), server_choice)


def test_peer_device_keys_must_be_self_signed(devices: tuple[_Device, _Device]) -> None:
    alice_device, bob_device = devices
    alice, bob = _run(alice_device, bob_device)
    forged = bob_device.keys.model_copy(update={"signature": _flip_b64(bob_device.keys.signature, 0)})
    with pytest.raises(TamperError):
        alice.verify_mac(bob.mac_message(), forged)


def test_mac_that_drops_a_key_is_refused(devices: tuple[_Device, _Device]) -> None:
    alice_device, bob_device = devices
    alice, bob = _run(alice_device, bob_device)
    mac = bob.mac_message()
    dropped = mac.model_copy(update={"macs": dict(list(mac.macs.items())[:1])})
    with pytest.raises(ProtocolError):
        alice.verify_mac(dropped, bob_device.keys)


def test_man_in_the_middle_is_visible() -> None:
    """Mallory sits between Alice and Bob and runs one SAS with each, claiming to be the other."""
    alice_device, bob_device = _Device("alice", "ALICEPHONE"), _Device("bob", "BOBLAPTOP")
    mallory_as_bob = SasDevice("bob", "BOBLAPTOP", DeviceAccount().device_keys())
    mallory_as_alice = SasDevice("alice", "ALICEPHONE", DeviceAccount().device_keys())

    alice = SasStarted.initiate(alice_device.sas, transaction_id=TXN)
    # Mallory answers Alice itself, and forwards the (identical) start to Bob from its own initiator.
    mallory_to_alice = SasStarted.respond(mallory_as_bob, alice.start_message)
    mallory_to_bob = SasStarted.initiate(mallory_as_alice, transaction_id=TXN)
    assert mallory_to_bob.start_message == alice.start_message
    bob = SasStarted.respond(bob_device.sas, mallory_to_bob.start_message)

    assert mallory_to_alice.accept_message is not None and bob.accept_message is not None
    alice_key = alice.receive_accept(mallory_to_alice.accept_message)
    mallory_key_to_bob = mallory_to_bob.receive_accept(bob.accept_message)

    mallory_alice_side = mallory_to_alice.receive_key(alice_key)
    bob_side = bob.receive_key(mallory_key_to_bob)
    assert mallory_alice_side.own_key_message is not None and bob_side.own_key_message is not None
    alice_side = alice.receive_key(mallory_alice_side.own_key_message)
    mallory_bob_side = mallory_to_bob.receive_key(bob_side.own_key_message)

    # Mallory can match each side alone, but the two honest users see different strings.
    assert alice_side.emoji() == mallory_alice_side.emoji()
    assert bob_side.emoji() == mallory_bob_side.emoji()
    assert alice_side.emoji() != bob_side.emoji()
    assert alice_side.decimals() != bob_side.decimals()

    # Relaying the honest MACs does not work either: they were made under the other SAS secret.
    with pytest.raises(TamperError):
        alice_side.verify_mac(bob_side.mac_message(), bob_device.keys)
    with pytest.raises(TamperError):
        bob_side.verify_mac(alice_side.mac_message(), alice_device.keys)


def test_responder_key_must_match_commitment(devices: tuple[_Device, _Device]) -> None:
    alice_device, bob_device = devices
    for position in range(32):
        alice = SasStarted.initiate(alice_device.sas, transaction_id=TXN)
        bob = SasStarted.respond(bob_device.sas, alice.start_message)
        assert bob.accept_message is not None
        flipped = bob.accept_message.model_copy(
            update={"commitment": _flip_b64(bob.accept_message.commitment, position)}
        )
        bob_key = bob.receive_key(alice.receive_accept(flipped)).own_key_message
        assert bob_key is not None
        with pytest.raises(TamperError):
            alice.receive_key(bob_key)
        with pytest.raises(ProtocolError):
            alice.receive_key(bob_key)  # the verification is over after a failed commitment
    # A key swapped after the commitment (what a MITM grinding for matching strings would need) is refused.
    alice = SasStarted.initiate(alice_device.sas, transaction_id=TXN)
    bob = SasStarted.respond(bob_device.sas, alice.start_message)
    assert bob.accept_message is not None
    alice.receive_accept(bob.accept_message)
    with pytest.raises(TamperError):
        alice.receive_key(SasKey(transaction_id=TXN, key=DeviceAccount().curve25519))


def test_out_of_order_and_foreign_messages(devices: tuple[_Device, _Device]) -> None:
    alice_device, bob_device = devices
    alice = SasStarted.initiate(alice_device.sas, transaction_id=TXN)
    bob = SasStarted.respond(bob_device.sas, alice.start_message)
    assert bob.accept_message is not None
    with pytest.raises(ProtocolError):
        bob.receive_accept(bob.accept_message)  # responders do not receive accepts
    with pytest.raises(ProtocolError):
        alice.receive_key(SasKey(transaction_id=TXN, key=DeviceAccount().curve25519))  # key before accept
    with pytest.raises(ProtocolError):
        alice.receive_accept(bob.accept_message.model_copy(update={"transaction_id": "txn_other_1"}))
    key = alice.receive_accept(bob.accept_message)
    with pytest.raises(ProtocolError):
        alice.receive_accept(bob.accept_message)  # twice
    with pytest.raises(ProtocolError):
        bob.receive_key(key.model_copy(update={"transaction_id": "txn_other_1"}))
    with pytest.raises(ProtocolError):
        bob.receive_key(SasKey(transaction_id=TXN, key=bob._public_key()))  # reflected key
    established = bob.receive_key(key)
    with pytest.raises(ProtocolError):
        bob.receive_key(key)  # single use
    with pytest.raises(ProtocolError):
        established.verify_mac(
            established.mac_message().model_copy(update={"transaction_id": "txn_other_1"}), alice_device.keys
        )


def test_malformed_sas_key(devices: tuple[_Device, _Device]) -> None:
    alice_device, bob_device = devices
    alice = SasStarted.initiate(alice_device.sas, transaction_id=TXN)
    bob = SasStarted.respond(bob_device.sas, alice.start_message)
    with pytest.raises(ValidationError):
        bob.receive_key(SasKey.model_construct(transaction_id=TXN, key="!" * 43))


def test_invalid_identifiers_are_refused() -> None:
    device = _Device("alice", "ALICEPHONE")
    with pytest.raises(ValidationError):
        SasStarted.initiate(device.sas, transaction_id="short")
    with pytest.raises(ValidationError):
        SasStarted.initiate(SasDevice("alice|x", "D", device.keys), transaction_id=TXN)


def test_sas_messages_parse_and_reject(devices: tuple[_Device, _Device]) -> None:
    alice_device, _ = devices
    alice = SasStarted.initiate(alice_device.sas, transaction_id=TXN)
    cancel = alice.cancel(SasCancelCode.MISMATCHED_SAS, "emoji differ")
    parsed = parse_sas_message(cancel.model_dump_json())
    assert isinstance(parsed, SasCancel) and parsed.code is SasCancelCode.MISMATCHED_SAS
    for bad in (
        b"not json",
        b'{"type": "vigil.sas.unknown", "transaction_id": "txn_0123456789"}',
        b'{"type": "vigil.sas.key", "transaction_id": "txn_0123456789", "key": "short"}',
        alice.start_message.model_dump_json()[:-1].encode() + b', "extra": 1}',
        b'{"type": "vigil.sas.start", "v": 2, "transaction_id": "txn_0123456789", "from_user": "alice",'
        b' "from_device": "D"}',
        b'{"type": "vigil.sas.start", "method": "sas.v0", "transaction_id": "txn_0123456789",'
        b' "from_user": "alice", "from_device": "D"}',
    ):
        with pytest.raises(ValidationError):
            parse_sas_message(bad)

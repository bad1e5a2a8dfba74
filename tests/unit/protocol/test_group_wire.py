from __future__ import annotations

import pytest

from vigil.client.verification import diff_device_keys
from vigil.errors import ValidationError
from vigil.protocol.group_wire import (
    GroupMeta,
    pack_group_ciphertext,
    parse_control_payload,
    unpack_group_ciphertext,
)
from vigil.protocol.megolm import InboundGroupSession, OutboundGroupSession
from vigil.protocol.verification import SasCancel, SasCancelCode


def test_group_ciphertext_framing_round_trips_and_decrypts() -> None:
    outbound = OutboundGroupSession()
    inbound = InboundGroupSession.from_key(outbound.session_key())
    packed = pack_group_ciphertext(outbound.encrypt(b"hello"))
    unpacked = unpack_group_ciphertext(packed)
    assert unpacked.session_id == outbound.session_id
    assert inbound.decrypt(unpacked).plaintext == b"hello"
    for bad in (b"", b"\x01" + bytes(32), b"\x02" + packed[1:]):
        with pytest.raises(ValidationError):
            unpack_group_ciphertext(bad)


def test_control_payloads_are_typed_and_strict() -> None:
    meta = GroupMeta(group_id="a" * 32, name="Book club")
    assert parse_control_payload(meta.model_dump_json().encode()) == meta
    cancel = SasCancel(transaction_id="abcdefgh", code=SasCancelCode.USER)
    assert parse_control_payload(cancel.model_dump_json().encode()) == cancel
    for bad in (
        b"{}",
        b'{"type": "group_meta", "group_id": "x", "name": "n"}',
        b"not json",
        meta.model_dump_json().replace('"v":1', '"v":1,"extra":1').encode(),
    ):
        with pytest.raises(ValidationError):
            parse_control_payload(bad)


def test_device_key_diff_names_added_removed_and_changed_devices() -> None:
    keys = {"curve25519": "c1", "ed25519": "e1", "signature": "s"}
    old = {"d1": keys, "d2": keys}
    new = {"d1": keys | {"ed25519": "e2"}, "d3": keys}
    assert diff_device_keys(old, new) == (("d3",), ("d2",), ("d1",))
    assert diff_device_keys(old, old) == ((), (), ())

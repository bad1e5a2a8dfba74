from __future__ import annotations

import pytest

from vigil.errors import DecryptionError, StorageError, TamperError, ValidationError
from vigil.protocol.encoding import b64decode, b64encode
from vigil.protocol.olm import (
    DeviceAccount,
    OlmMessageParts,
    PairwiseSession,
    verify_device_keys,
    verify_signed_key,
)
from vigil.protocol.wire import AgeBand, InnerPayload, MessageKind

KEY = b"p" * 32


def _pair() -> tuple[DeviceAccount, DeviceAccount, PairwiseSession]:
    alice, bob = DeviceAccount(), DeviceAccount()
    otk = bob.new_one_time_keys(1)[0]
    bob.mark_published()
    return alice, bob, alice.outbound_session(bob.curve25519, otk.key)


def test_device_keys_signature_and_tampering() -> None:
    keys = DeviceAccount().device_keys()
    verify_device_keys(keys)
    other = DeviceAccount()
    with pytest.raises(TamperError):
        verify_device_keys(keys.model_copy(update={"curve25519": other.curve25519}))
    with pytest.raises(TamperError):
        verify_device_keys(keys.model_copy(update={"ed25519": other.ed25519}))
    signature = bytearray(b64decode(keys.signature + "=="))
    signature[5] ^= 1
    with pytest.raises(TamperError):
        verify_device_keys(keys.model_copy(update={"signature": b64encode(bytes(signature)).rstrip("=")}))


def test_signed_one_time_keys() -> None:
    account = DeviceAccount()
    key = account.new_one_time_keys(1)[0]
    verify_signed_key(account.ed25519, key)
    with pytest.raises(TamperError):
        verify_signed_key(DeviceAccount().ed25519, key)
    with pytest.raises(TamperError):
        verify_signed_key(account.ed25519, key.model_copy(update={"key_id": "other"}))


def test_session_round_trip_and_failed_decrypt_changes_nothing() -> None:
    alice, bob, session = _pair()
    first = session.encrypt(b"hello")
    bob_session, plaintext = bob.inbound_session(alice.curve25519, first)
    assert plaintext == b"hello" and bob_session.matches(first)
    reply = bob_session.encrypt(b"hi")
    assert reply.message_type == 1
    tampered = OlmMessageParts(1, reply.ciphertext[:-1] + bytes([reply.ciphertext[-1] ^ 1]))
    with pytest.raises(DecryptionError):
        session.decrypt(tampered)
    assert session.decrypt(reply) == b"hi"  # the failed attempt left the ratchet untouched


def test_pickles_need_the_right_key() -> None:
    alice, _bob, session = _pair()
    restored = DeviceAccount.from_pickle(alice.pickle(KEY), KEY)
    assert restored.curve25519 == alice.curve25519
    with pytest.raises(StorageError):
        DeviceAccount.from_pickle(alice.pickle(KEY), b"q" * 32)
    with pytest.raises(StorageError):
        PairwiseSession.from_pickle(session.pickle(KEY), b"q" * 32)
    with pytest.raises(ValidationError):
        alice.pickle(b"short")


def test_inbound_session_needs_a_pre_key_message() -> None:
    alice, bob, _session = _pair()
    with pytest.raises(DecryptionError):
        bob.inbound_session(alice.curve25519, OlmMessageParts(1, b"garbage"))
    with pytest.raises(DecryptionError):
        bob.inbound_session(alice.curve25519, OlmMessageParts(0, b"garbage"))


@pytest.mark.parametrize(
    ("birth", "today", "band"),
    [
        ("2013-06-02", "2026-06-01", AgeBand.UNDER_13),
        ("2013-06-01", "2026-06-01", AgeBand.TEEN_13_15),
        ("2010-06-02", "2026-06-01", AgeBand.TEEN_13_15),
        ("2010-06-01", "2026-06-01", AgeBand.TEEN_16_17),
        ("2008-06-01", "2026-06-01", AgeBand.ADULT),
    ],
)
def test_age_bands(birth: str, today: str, band: AgeBand) -> None:
    import datetime as dt

    assert AgeBand.from_birth_date(dt.date.fromisoformat(birth), dt.date.fromisoformat(today)) is band
    assert band.is_minor is (band is not AgeBand.ADULT)


def test_franked_bytes_exclude_only_the_franking_key() -> None:
    payload = InnerPayload(
        message_id="m",
        sender="alice",
        conversation="bob",
        sent_at_ms=1,
        kind=MessageKind.TEXT,
        body="hi",
        franking_key=b64encode(b"k" * 32),
    )
    assert b"franking_key" not in payload.franked_bytes()
    assert payload.franked_bytes() == payload.model_copy(update={"franking_key": "other"}).franked_bytes()
    assert payload.franked_bytes() != payload.model_copy(update={"body": "hj"}).franked_bytes()


def test_strict_base64() -> None:
    assert b64decode(b64encode(b"abc")) == b"abc"
    for bad in ("@@@", "YWJj=", "YW Jj"):
        with pytest.raises(ValidationError):
            b64decode(bad)
    with pytest.raises(ValidationError):
        b64decode(b64encode(b"x" * 100), max_bytes=10)

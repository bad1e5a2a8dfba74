from __future__ import annotations

import dataclasses

import pytest

from vigil.errors import TamperError, ValidationError
from vigil.protocol.franking import (
    FrankingContext,
    commit,
    new_franking_key,
    server_tag,
    verify_commitment,
    verify_server_tag,
)

SERVER_KEY = b"k" * 32
PAYLOAD = b'{"body":"hello","sender":"alice"}'


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def test_commitment_verifies_and_every_bit_flip_fails() -> None:
    key = new_franking_key()
    commitment = commit(key, PAYLOAD)
    verify_commitment(key, PAYLOAD, commitment)
    for bit in range(len(commitment) * 8):
        with pytest.raises(TamperError):
            verify_commitment(key, PAYLOAD, _flip(commitment, bit))
    for bit in range(0, len(PAYLOAD) * 8, 7):
        with pytest.raises(TamperError):
            verify_commitment(key, _flip(PAYLOAD, bit), commitment)
    with pytest.raises(TamperError):
        verify_commitment(_flip(key, 3), PAYLOAD, commitment)


def test_commitment_needs_a_32_byte_key() -> None:
    with pytest.raises(ValidationError):
        commit(b"short", PAYLOAD)
    with pytest.raises(TamperError):
        verify_commitment(b"short", PAYLOAD, b"x" * 32)


def test_server_tag_binds_every_field() -> None:
    context = FrankingContext(commit(new_franking_key(), PAYLOAD), "alice", "bob", 1_700_000_000_000, "m-1")
    tag = server_tag(SERVER_KEY, context)
    verify_server_tag(SERVER_KEY, context, tag)
    for bit in range(len(tag) * 8):
        with pytest.raises(TamperError):
            verify_server_tag(SERVER_KEY, context, _flip(tag, bit))
    changed = [
        dataclasses.replace(context, commitment=_flip(context.commitment, 0)),
        dataclasses.replace(context, sender="mallory"),
        dataclasses.replace(context, conversation="carol"),
        dataclasses.replace(context, server_ts_ms=context.server_ts_ms + 1),
        dataclasses.replace(context, message_id="m-2"),
    ]
    for other in changed:
        with pytest.raises(TamperError):
            verify_server_tag(SERVER_KEY, other, tag)
    with pytest.raises(TamperError):
        verify_server_tag(b"j" * 32, context, tag)


def test_field_boundaries_are_unambiguous() -> None:
    one = FrankingContext(b"c" * 32, "ab", "c", 1, "m")
    two = FrankingContext(b"c" * 32, "a", "bc", 1, "m")
    assert server_tag(SERVER_KEY, one) != server_tag(SERVER_KEY, two)


def test_server_tag_refuses_short_keys_and_bad_commitments() -> None:
    with pytest.raises(ValidationError):
        server_tag(b"short", FrankingContext(b"c" * 32, "a", "b", 1, "m"))
    with pytest.raises(ValidationError):
        server_tag(SERVER_KEY, FrankingContext(b"c" * 31, "a", "b", 1, "m"))

"""Voucher encryption to the safety team's key, and the authority's signature over that key."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vigil.errors import DecryptionError, TamperError, ValidationError
from vigil.protocol.encoding import b64decode
from vigil.protocol.vouchers import (
    SealedVoucher,
    VoucherKeyPair,
    VoucherSubmission,
    authority_fingerprint,
    decode_authority_key,
    encode_authority_key,
    open_voucher,
    seal_voucher,
    verify_voucher_key,
    voucher_key_statement,
)


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 1]) + data[index + 1 :]


def test_a_voucher_opens_only_with_the_safety_team_key() -> None:
    team = VoucherKeyPair.generate()
    sealed = seal_voucher(team.public, b"image bytes and proof")
    assert open_voucher(team.secret, sealed) == b"image bytes and proof"
    with pytest.raises(DecryptionError):
        open_voucher(VoucherKeyPair.generate().secret, sealed)


@pytest.mark.parametrize("part", ["ciphertext", "mac", "ephemeral_key"])
def test_a_flipped_bit_in_any_part_does_not_open(part: str) -> None:
    team = VoucherKeyPair.generate()
    sealed = seal_voucher(team.public, b"x" * 100)
    parts = {"ciphertext": sealed.ciphertext, "mac": sealed.mac, "ephemeral_key": sealed.ephemeral_key}
    parts[part] = _flip(parts[part], 0)
    with pytest.raises(DecryptionError):
        open_voucher(team.secret, SealedVoucher(**parts))


def test_the_voucher_key_must_be_signed_by_the_pinned_authority() -> None:
    authority = Ed25519PrivateKey.generate()
    public = VoucherKeyPair.generate().public
    signature = authority.sign(voucher_key_statement(public))
    verify_voucher_key(authority.public_key(), public, signature)
    with pytest.raises(TamperError):
        verify_voucher_key(authority.public_key(), public, _flip(signature, 5))
    with pytest.raises(TamperError):
        verify_voucher_key(authority.public_key(), _flip(public, 0), signature)
    with pytest.raises(TamperError):
        verify_voucher_key(Ed25519PrivateKey.generate().public_key(), public, signature)


def test_submission_round_trip_and_bad_parts() -> None:
    sealed = seal_voucher(VoucherKeyPair.generate().public, b"y" * 40)
    submission = VoucherSubmission.of("6f1c1f0e-8d0c-4a4e-9f43-3b1c2f7b5b10", sealed)
    assert submission.sealed() == sealed
    bad = submission.model_copy(update={"mac": "AAAA"})
    with pytest.raises(ValidationError):
        bad.sealed()


def test_authority_key_encoding() -> None:
    key = Ed25519PrivateKey.generate().public_key()
    assert encode_authority_key(decode_authority_key(encode_authority_key(key))) == encode_authority_key(key)
    with pytest.raises(ValidationError):
        decode_authority_key("AAAA")


def test_authority_fingerprint_is_eight_groups_of_the_keys_sha256_and_tells_keys_apart() -> None:
    key = encode_authority_key(Ed25519PrivateKey.generate().public_key())
    other = encode_authority_key(Ed25519PrivateKey.generate().public_key())
    shown = authority_fingerprint(key)
    groups = shown.split(" ")
    assert len(groups) == 8 and all(len(g) == 4 for g in groups)
    assert "".join(groups) == hashlib.sha256(b64decode(key, field="key")).hexdigest()[:32]
    assert authority_fingerprint(f"  {key}\n") == shown and authority_fingerprint(other) != shown
    with pytest.raises(ValidationError):
        authority_fingerprint("AAAA")

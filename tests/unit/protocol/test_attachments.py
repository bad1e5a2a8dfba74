from __future__ import annotations

import pytest

from vigil.errors import DecryptionError, TamperError, ValidationError
from vigil.protocol.attachments import decrypt_attachment, encrypt_attachment


def test_round_trip_and_fresh_key_per_upload() -> None:
    data = b"picture bytes" * 100
    first, second = encrypt_attachment(data), encrypt_attachment(data)
    assert decrypt_attachment(first.blob, first.key, first.plaintext_sha256, first.size) == data
    assert first.blob != second.blob and first.key != second.key  # nothing to deduplicate across keys
    assert data not in first.blob


def test_every_bit_of_the_blob_is_authenticated() -> None:
    encrypted = encrypt_attachment(b"abc" * 10)
    for bit in range(len(encrypted.blob) * 8):
        blob = bytearray(encrypted.blob)
        blob[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(DecryptionError):
            decrypt_attachment(bytes(blob), encrypted.key, encrypted.plaintext_sha256, encrypted.size)


def test_content_must_match_the_committed_hash_and_size() -> None:
    """A blob that decrypts under its key but is not what the sender committed to (a swapped blob,
    the invisible-salamanders case) is refused."""
    genuine, swapped = encrypt_attachment(b"genuine"), encrypt_attachment(b"swapped")
    with pytest.raises(TamperError):
        decrypt_attachment(swapped.blob, swapped.key, genuine.plaintext_sha256, genuine.size)
    with pytest.raises(TamperError):
        decrypt_attachment(genuine.blob, genuine.key, genuine.plaintext_sha256, genuine.size + 1)


def test_bad_key_and_truncated_blob() -> None:
    encrypted = encrypt_attachment(b"x")
    with pytest.raises(ValidationError):
        decrypt_attachment(encrypted.blob, b"short", encrypted.plaintext_sha256, 1)
    with pytest.raises(DecryptionError):
        decrypt_attachment(encrypted.blob[:10], encrypted.key, encrypted.plaintext_sha256, 1)

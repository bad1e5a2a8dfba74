"""Attachment content encryption: AES-256-GCM with a fresh key per blob, committed by plaintext SHA-256.

AES-GCM alone is not key-committing (the "invisible salamanders" attack), so the plaintext hash travels
inside the franked message and the recipient refuses content whose hash differs. A fresh key per blob
means the same file uploaded twice gives unrelated blobs: nothing to deduplicate across keys.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vigil.errors import DecryptionError, TamperError, ValidationError

__all__ = ["ATTACHMENT_AAD", "EncryptedAttachment", "decrypt_attachment", "encrypt_attachment"]

ATTACHMENT_AAD = b"vigil-attachment-v1"
KEY_BYTES = 32
NONCE_BYTES = 12


@dataclass(frozen=True, slots=True)
class EncryptedAttachment:
    blob: bytes  # nonce || ciphertext || tag: what the server stores
    key: bytes
    plaintext_sha256: bytes
    size: int


def encrypt_attachment(plaintext: bytes) -> EncryptedAttachment:
    key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(NONCE_BYTES)
    blob = nonce + AESGCM(key).encrypt(nonce, plaintext, ATTACHMENT_AAD)
    return EncryptedAttachment(blob, key, hashlib.sha256(plaintext).digest(), len(plaintext))


def decrypt_attachment(blob: bytes, key: bytes, expected_sha256: bytes, expected_size: int) -> bytes:
    """Raises ValidationError on a bad key size, DecryptionError if the blob does not authenticate, and
    TamperError if the decrypted content is not the content the sender committed to."""
    if len(key) != KEY_BYTES:
        raise ValidationError(f"attachment key must be {KEY_BYTES} bytes")
    if len(blob) < NONCE_BYTES + 16:
        raise DecryptionError("attachment blob is truncated")
    try:
        plaintext = AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], ATTACHMENT_AAD)
    except InvalidTag as error:
        raise DecryptionError("attachment blob failed authentication") from error
    digest = hashlib.sha256(plaintext).digest()
    if len(plaintext) != expected_size or not hmac.compare_digest(digest, expected_sha256):
        raise TamperError("attachment content does not match its committed hash")
    return plaintext

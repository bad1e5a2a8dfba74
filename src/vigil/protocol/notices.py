"""Signing and verifying safety notices (server-signed system events, Ed25519).

The notice key is separate from every other server key: a client that verifies a notice knows the
server's safety layer issued exactly these bytes for exactly this account. Pure, no I/O.
"""

from __future__ import annotations

import json

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import ValidationError as PydanticValidationError

from vigil.errors import TamperError, ValidationError
from vigil.protocol.contacts import SafetyNoticeBody, SignedNotice
from vigil.protocol.encoding import b64decode, b64encode, canonical_json

__all__ = ["NOTICE_CONTEXT", "notice_public_key", "sign_notice", "verify_notice"]

# Domain separation: a notice signature can never be replayed as any other Ed25519-signed object.
NOTICE_CONTEXT = b"vigil/safety-notice/v1\x00"


def notice_public_key(seed: bytes) -> bytes:
    """The raw 32-byte public key for a 32-byte private seed. Raises ValidationError on a bad seed."""
    if len(seed) != 32:
        raise ValidationError("the notice signing key is a 32-byte Ed25519 seed")
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()


def sign_notice(seed: bytes, body: SafetyNoticeBody) -> SignedNotice:
    """Raises ValidationError on a bad seed."""
    if len(seed) != 32:
        raise ValidationError("the notice signing key is a 32-byte Ed25519 seed")
    payload = canonical_json(body.model_dump(mode="json"))
    signature = Ed25519PrivateKey.from_private_bytes(seed).sign(NOTICE_CONTEXT + payload)
    return SignedNotice(payload=b64encode(payload), signature=b64encode(signature))


def verify_notice(public_key: bytes, notice: SignedNotice, *, recipient: str) -> SafetyNoticeBody:
    """The notice's body once its signature checks out and it is addressed to `recipient`.

    Raises TamperError on a bad signature, a malformed payload or a notice for someone else.
    """
    try:
        payload = b64decode(notice.payload, field="notice payload")
        signature = b64decode(notice.signature, field="notice signature", max_bytes=64)
        key = Ed25519PublicKey.from_public_bytes(public_key)
    except (ValidationError, ValueError) as error:
        raise TamperError(f"malformed safety notice: {error}") from error
    try:
        key.verify(signature, NOTICE_CONTEXT + payload)
    except InvalidSignature as error:
        raise TamperError("the safety notice's signature does not verify") from error
    try:
        body = SafetyNoticeBody.model_validate(json.loads(payload))
    except (ValueError, PydanticValidationError) as error:
        raise TamperError("the safety notice's payload is malformed") from error
    if canonical_json(body.model_dump(mode="json")) != payload:
        raise TamperError("the safety notice's payload is not canonical")
    if body.recipient != recipient:
        raise TamperError("the safety notice is addressed to another account")
    return body

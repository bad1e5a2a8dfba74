"""Reported content at rest: AES-256-GCM under the report key from settings, bound by associated data to
the row and column it belongs to, so a ciphertext moved to another row does not decrypt."""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vigil.errors import StorageError, ValidationError
from vigil.server.context import ServerContext

__all__ = ["EvidenceBox", "evidence_box"]

_NONCE = 12
_VERSION = b"\x01"


class EvidenceBox:
    def __init__(self, key: bytes) -> None:
        """Raises ValidationError unless the key is 32 bytes."""
        if len(key) != 32:
            raise ValidationError("the report key must be 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, context: str) -> bytes:
        nonce = os.urandom(_NONCE)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, _VERSION + context.encode())

    def open(self, sealed: bytes, context: str) -> bytes:
        """Raises StorageError when the value does not authenticate (wrong key, row or tampering)."""
        if len(sealed) < 1 + _NONCE + 16 or sealed[:1] != _VERSION:
            raise StorageError("stored evidence is malformed")
        try:
            return self._aead.decrypt(
                sealed[1 : 1 + _NONCE], sealed[1 + _NONCE :], _VERSION + context.encode()
            )
        except InvalidTag as error:
            raise StorageError("stored evidence does not decrypt with the report key") from error


def evidence_box(ctx: ServerContext) -> EvidenceBox:
    """Raises ValidationError outside dev when no report key is configured."""
    if ctx.report_key is None:
        ctx.report_key = ctx.settings.load_report_key()
    return EvidenceBox(ctx.report_key)

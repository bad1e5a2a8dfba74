"""Message franking (Facebook Messenger's construction) so a recipient can prove what a sender sent.

The sender picks a random 32-byte franking key `kf` per message and sends the commitment
`c = HMAC-SHA256(kf, canonical(payload))` outside the ciphertext and `kf` inside it. The server binds the
commitment to the metadata it sees with its own tag `t = HMAC-SHA256(K_server, c || sender || conversation ||
server_ts || message_id)`. A report reveals payload and `kf`; the server recomputes both MACs.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from hashlib import sha256

from vigil.errors import TamperError, ValidationError
from vigil.protocol.encoding import length_prefixed

__all__ = [
    "COMMITMENT_BYTES",
    "FRANKING_KEY_BYTES",
    "FrankingContext",
    "commit",
    "new_franking_key",
    "server_tag",
    "verify_commitment",
    "verify_server_tag",
]

FRANKING_KEY_BYTES = 32
COMMITMENT_BYTES = 32
SERVER_KEY_MIN_BYTES = 32


@dataclass(frozen=True, slots=True)
class FrankingContext:
    """What the server saw when it accepted a message; everything the server tag binds."""

    commitment: bytes
    sender: str
    conversation: str  # recipient username for 1:1, "group:<id>" for groups
    server_ts_ms: int
    message_id: str

    def encode(self) -> bytes:
        return length_prefixed(
            self.commitment,
            self.sender.encode(),
            self.conversation.encode(),
            str(self.server_ts_ms).encode(),
            self.message_id.encode(),
        )


def new_franking_key() -> bytes:
    return secrets.token_bytes(FRANKING_KEY_BYTES)


def commit(franking_key: bytes, canonical_payload: bytes) -> bytes:
    """Raises ValidationError if the key is not 32 bytes."""
    if len(franking_key) != FRANKING_KEY_BYTES:
        raise ValidationError(f"franking key must be {FRANKING_KEY_BYTES} bytes")
    return hmac.new(franking_key, canonical_payload, sha256).digest()


def verify_commitment(franking_key: bytes, canonical_payload: bytes, commitment: bytes) -> None:
    """Raises TamperError unless `commitment` commits to the payload under `franking_key`."""
    if len(franking_key) != FRANKING_KEY_BYTES or not hmac.compare_digest(
        commit(franking_key, canonical_payload), commitment
    ):
        raise TamperError("franking commitment does not match the message")


def server_tag(server_key: bytes, context: FrankingContext) -> bytes:
    """Raises ValidationError on a short server key or a commitment of the wrong size."""
    if len(server_key) < SERVER_KEY_MIN_BYTES:
        raise ValidationError("server franking key is too short")
    if len(context.commitment) != COMMITMENT_BYTES:
        raise ValidationError(f"commitment must be {COMMITMENT_BYTES} bytes")
    return hmac.new(server_key, context.encode(), sha256).digest()


def verify_server_tag(server_key: bytes, context: FrankingContext, tag: bytes) -> None:
    """Raises TamperError unless `tag` is this server's tag over exactly `context`."""
    if not hmac.compare_digest(server_tag(server_key, context), tag):
        raise TamperError("server franking tag does not match")

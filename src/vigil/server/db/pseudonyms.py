"""Account pseudonyms for the metadata event log (issue 16: user identifiers pseudonymous where scoring
allows). The log names an account by a keyed HMAC of its stable id, never by its username, so a copy of
the database alone does not say who messaged whom; the server maps a pseudonym back to an account only
where a feature needs it (scoring's restriction decision, holds, deletion, a case's timeline)."""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["PSEUDONYM_CHARS", "derive_pseudonym_key", "key_fingerprint", "pseudonym"]

# 128 bits of HMAC-SHA256, hex: fits the log's 32-character identifier columns.
PSEUDONYM_CHARS = 32
_LABEL = b"vigil metadata-log account pseudonym v1"
_FINGERPRINT_LABEL = b"vigil metadata-log pseudonym key fingerprint v1"


def derive_pseudonym_key(report_key: bytes) -> bytes:
    """The pseudonym key, derived from `VIGIL_REPORT_KEY` under its own label (one secret fewer to run;
    the report key never signs or seals anything with this label)."""
    return hmac.new(report_key, _LABEL, hashlib.sha256).digest()


def pseudonym(key: bytes, user_id: int) -> str:
    """The metadata log's name for the account with stable id `user_id`."""
    return hmac.new(key, str(user_id).encode(), hashlib.sha256).hexdigest()[:PSEUDONYM_CHARS]


def key_fingerprint(key: bytes) -> str:
    """Names a pseudonym key without revealing it (an HMAC under the key of a fixed label): what the log
    records to know which key its accounts are named under."""
    return hmac.new(key, _FINGERPRINT_LABEL, hashlib.sha256).hexdigest()[:PSEUDONYM_CHARS]

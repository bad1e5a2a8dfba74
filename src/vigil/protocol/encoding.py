"""Strict base64 and canonical encodings used on the wire."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from vigil.errors import ValidationError

__all__ = ["b64decode", "b64encode", "canonical_json", "length_prefixed"]


def b64encode(data: bytes) -> str:
    """Standard base64 with padding."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str, *, field: str = "value", max_bytes: int | None = None) -> bytes:
    """Decode standard padded base64, refusing anything not in its one canonical form.

    Raises ValidationError naming `field` on bad alphabet, padding or a decoded size over `max_bytes`.
    """
    if max_bytes is not None and len(text) > (max_bytes * 4) // 3 + 4:
        raise ValidationError(f"{field} is larger than {max_bytes} bytes")
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as error:
        raise ValidationError(f"{field} is not valid base64") from error
    if base64.b64encode(data).decode("ascii") != text:
        raise ValidationError(f"{field} is not canonical padded base64")
    if max_bytes is not None and len(data) > max_bytes:
        raise ValidationError(f"{field} is larger than {max_bytes} bytes")
    return data


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """Deterministic JSON (sorted keys, no spaces, UTF-8) so that both ends MAC the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def length_prefixed(*parts: bytes) -> bytes:
    """Concatenate with 4-byte big-endian length prefixes so no two part lists encode alike."""
    return b"".join(len(part).to_bytes(4, "big") + part for part in parts)

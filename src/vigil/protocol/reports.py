"""Wire models of abuse reports, blocks and account notices. Version 1.

A report reveals, for the reported message and up to `MAX_CONTEXT_MESSAGES` earlier messages of the same
conversation, what the reporter's device holds: the plaintext payload (with its franking key), the
commitment, the server's franking tag and the server timestamp, plus the decrypted attachment bytes when
the message carried one. The server verifies every item (`vigil.safety.reports`).
"""

from __future__ import annotations

import enum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from vigil.protocol.encoding import b64decode
from vigil.protocol.wire import MAX_WIRE_INT

__all__ = [
    "MAX_APPEAL_REASON_CHARS",
    "MAX_CONTEXT_MESSAGES",
    "MAX_REPORTED_ATTACHMENT_BYTES",
    "AppealAccepted",
    "AppealRequest",
    "BlockList",
    "BlockRequest",
    "Notice",
    "NoticeList",
    "ReportAccepted",
    "ReportReason",
    "ReportRequest",
    "ReportedMessage",
]

MAX_CONTEXT_MESSAGES = 10
MAX_APPEAL_REASON_CHARS = 1000
# Reported attachments travel inside the JSON report; the server's JSON body limit applies on top.
MAX_REPORTED_ATTACHMENT_BYTES = 2 * 1024 * 1024

B64Digest = Annotated[str, StringConstraints(min_length=44, max_length=44)]


class ReportReason(enum.StrEnum):
    CSAM = "csam"
    GROOMING = "grooming"
    SEXTORTION = "sextortion"
    HARASSMENT = "harassment"
    SPAM = "spam"
    OTHER = "other"

    @property
    def label(self) -> str:
        match self:
            case ReportReason.CSAM:
                return "Child sexual abuse material"
            case ReportReason.GROOMING:
                return "Grooming / enticement"
            case ReportReason.SEXTORTION:
                return "Sextortion"
            case ReportReason.HARASSMENT:
                return "Harassment"
            case ReportReason.SPAM:
                return "Spam"
            case ReportReason.OTHER:
                return "Other"


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


def _check_digest(value: str | None, field: str) -> str | None:
    if value is not None and len(b64decode(value, field=field, max_bytes=32)) != 32:
        raise ValueError(f"{field} must be 32 bytes")
    return value


class ReportedMessage(_Request):
    """One message as the reporter's device holds it. `payload` is the decrypted `InnerPayload` (parsed
    by the server during verification, so a malformed one is kept as an unverifiable claim)."""

    payload: dict[str, Any]
    commitment: B64Digest
    franking_tag: B64Digest | None = None  # absent for messages this very device sent
    server_ts_ms: int | None = Field(default=None, ge=0, le=MAX_WIRE_INT)
    attachment: str | None = Field(default=None, max_length=(MAX_REPORTED_ATTACHMENT_BYTES * 4) // 3 + 4)

    @field_validator("commitment")
    @classmethod
    def _commitment(cls, value: str) -> str:
        return _check_digest(value, "commitment") or value

    @field_validator("franking_tag")
    @classmethod
    def _tag(cls, value: str | None) -> str | None:
        return _check_digest(value, "franking tag")

    @field_validator("attachment")
    @classmethod
    def _attachment(cls, value: str | None) -> str | None:
        if value is not None:
            b64decode(value, field="attachment", max_bytes=MAX_REPORTED_ATTACHMENT_BYTES)
        return value


class ReportRequest(_Request):
    """`messages[0]` is the reported message; the rest are earlier messages of the same conversation."""

    reason: ReportReason
    note: str | None = Field(default=None, max_length=2000)
    messages: list[ReportedMessage] = Field(min_length=1, max_length=1 + MAX_CONTEXT_MESSAGES)
    block: bool = False


class ReportAccepted(_Response):
    report_id: int
    case_id: int
    reported: str
    verified: list[bool]
    blocked: bool


class BlockRequest(_Request):
    username: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{3,32}$")]


class BlockList(_Response):
    blocked: list[str]


class Notice(_Response):
    id: int
    kind: str
    text: str
    created_at_ms: int


class NoticeList(_Response):
    notices: list[Notice]


class AppealRequest(_Request):
    """An account's one appeal against the latest action taken on it, in its own words."""

    reason: Annotated[str, StringConstraints(min_length=1, max_length=MAX_APPEAL_REASON_CHARS)]


class AppealAccepted(_Response):
    appeal_id: int
    action: str  # the action appealed: warn, restrict or suspend

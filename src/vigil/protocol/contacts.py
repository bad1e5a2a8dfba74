"""Wire models of contact requests, connections, account reports and signed safety notices.

A safety notice is a server-signed system event: `payload` is the canonical JSON of `SafetyNoticeBody`
(base64) and `signature` an Ed25519 signature over it by the server's notice key, which is not the
franking key. Clients verify before showing anything (`vigil.protocol.notices`).
"""

from __future__ import annotations

import enum

from pydantic import BaseModel, ConfigDict, Field

from vigil.protocol.reports import ReportReason

__all__ = [
    "AccountReportRequest",
    "ContactList",
    "ContactRequestCreate",
    "ContactRequestList",
    "ContactRequestState",
    "ContactRequestView",
    "NoticeAction",
    "NoticeKey",
    "SafetyNoticeBody",
    "SignedNotice",
    "SignedNoticeList",
]

_USERNAME = r"^[a-z0-9_]{3,32}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ContactRequestState(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    IGNORED = "ignored"
    BLOCKED = "blocked"


class ContactRequestCreate(_Strict):
    """No free text and no media: a request carries only who asks whom."""

    to: str = Field(pattern=_USERNAME)


class ContactRequestView(_Strict):
    id: int
    requester: str
    recipient: str
    state: ContactRequestState
    created_at_ms: int
    answered_at_ms: int | None = None


class ContactRequestList(_Strict):
    incoming: list[ContactRequestView]
    outgoing: list[ContactRequestView]


class ContactList(_Strict):
    contacts: list[str]


class AccountReportRequest(_Strict):
    """A report about an account rather than a message (from a contact request or a safety notice)."""

    username: str = Field(pattern=_USERNAME)
    reason: ReportReason
    block: bool = True


class NoticeAction(enum.StrEnum):
    BLOCK = "block"
    REPORT = "report"


class SafetyNoticeBody(_Strict):
    """What the server signs. `recipient` binds the notice to one account, `id` makes it unique."""

    v: int = 1
    id: int
    recipient: str
    subject: str
    kind: str
    text: str
    actions: list[NoticeAction]
    created_at_ms: int


class SignedNotice(_Strict):
    payload: str  # base64 of the canonical JSON of SafetyNoticeBody
    signature: str  # base64 Ed25519 signature over the payload bytes


class SignedNoticeList(_Strict):
    notices: list[SignedNotice]


class NoticeKey(_Strict):
    algorithm: str = "ed25519"
    public_key: str  # base64 of the 32-byte raw public key

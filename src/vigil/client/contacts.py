"""Contact requests and signed safety notices on the client side (the minors' protective defaults).

A safety notice is shown only after its Ed25519 signature verifies against the server's notice key and
it is addressed to this account; a forged or tampered notice is dropped and counted, never shown. The
notice key is pinned in the device store the first time it is fetched (at registration, or on first
use), so a later key change is refused rather than trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from vigil.errors import TamperError
from vigil.protocol.contacts import (
    AccountReportRequest,
    ContactList,
    ContactRequestCreate,
    ContactRequestList,
    ContactRequestView,
    NoticeAction,
    NoticeKey,
    SignedNotice,
    SignedNoticeList,
)
from vigil.protocol.encoding import b64decode
from vigil.protocol.notices import verify_notice
from vigil.protocol.reports import ReportAccepted, ReportReason

if TYPE_CHECKING:
    from vigil.client.client import Client

__all__ = [
    "NOTICE_KEY_SECRET",
    "SafetyNotice",
    "answer_request",
    "fetch_safety_notices",
    "list_contacts",
    "list_requests",
    "notice_key",
    "report_account",
    "request_contact",
    "verify_notices",
]

NOTICE_KEY_SECRET = "safety_notice_key"  # noqa: S105 (a store entry name, not a secret)


class _Empty(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True, slots=True)
class SafetyNotice:
    """A verified notice from Vigil's safety layer about `subject`, with the actions the app offers."""

    id: int
    subject: str
    kind: str
    text: str
    actions: tuple[NoticeAction, ...]
    created_at_ms: int


async def request_contact(client: Client, username: str) -> ContactRequestView:
    return await client.transport._post(
        "/v1/contacts/requests", ContactRequestCreate(to=username), ContactRequestView
    )


async def list_requests(client: Client) -> ContactRequestList:
    return await client.transport._get("/v1/contacts/requests", ContactRequestList)


async def answer_request(client: Client, request_id: int, answer: str) -> ContactRequestView:
    return await client.transport._post(
        f"/v1/contacts/requests/{int(request_id)}/{answer}", _Empty(), ContactRequestView
    )


async def list_contacts(client: Client) -> list[str]:
    return (await client.transport._get("/v1/contacts", ContactList)).contacts


async def report_account(client: Client, username: str, reason: ReportReason, block: bool) -> ReportAccepted:
    return await client.transport._post(
        "/v1/contacts/report",
        AccountReportRequest(username=username, reason=reason, block=block),
        ReportAccepted,
    )


async def notice_key(client: Client) -> bytes:
    """The pinned notice key, fetched and pinned on first use. Raises TamperError when the server now
    presents a different key than the pinned one."""
    pinned = client.store.get_secret(NOTICE_KEY_SECRET)
    served = await client.transport._get("/v1/safety/notice-key", NoticeKey)
    key = b64decode(served.public_key, field="notice key", max_bytes=32)
    if pinned is None:
        client.store.set_secret(NOTICE_KEY_SECRET, key.hex())
        return key
    if bytes.fromhex(pinned) != key:
        raise TamperError("the server's safety-notice key changed; notices are not trusted")
    return key


def verify_notices(
    key: bytes, notices: list[SignedNotice], recipient: str
) -> tuple[list[SafetyNotice], list[str]]:
    """Verified notices, and the reasons the others were rejected."""
    shown, rejected = [], []
    for signed in notices:
        try:
            body = verify_notice(key, signed, recipient=recipient)
        except TamperError as error:
            rejected.append(error.detail)
            continue
        shown.append(
            SafetyNotice(body.id, body.subject, body.kind, body.text, tuple(body.actions), body.created_at_ms)
        )
    return shown, rejected


async def fetch_safety_notices(client: Client, after: int = 0) -> tuple[list[SafetyNotice], list[str]]:
    key = await notice_key(client)
    signed = await client.transport._get("/v1/safety/notices", SignedNoticeList, params={"after": after})
    return verify_notices(key, signed.notices, client.username)

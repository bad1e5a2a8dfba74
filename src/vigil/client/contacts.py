"""Contact requests and signed safety notices on the client side (the minors' protective defaults).

A safety notice is shown only after its Ed25519 signature verifies against the server's notice key and
it is addressed to this account; a forged or tampered notice is dropped and counted, never shown. The
notice key is pinned in the device store the first time it is fetched (at registration, or on first
use), so a later key change is refused rather than trusted.
"""

from __future__ import annotations

from dataclasses import dataclass

from vigil.client.device import DeviceCore
from vigil.client.transport import ContactAnswer
from vigil.errors import TamperError
from vigil.protocol.contacts import (
    AccountReportRequest,
    ContactRequestList,
    ContactRequestView,
    NoticeAction,
    SignedNotice,
)
from vigil.protocol.encoding import b64decode
from vigil.protocol.notices import verify_notice
from vigil.protocol.reports import ReportAccepted, ReportReason

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


@dataclass(frozen=True, slots=True)
class SafetyNotice:
    """A verified notice from Vigil's safety layer about `subject`, with the actions the app offers."""

    id: int
    subject: str
    kind: str
    text: str
    actions: tuple[NoticeAction, ...]
    created_at_ms: int


async def request_contact(core: DeviceCore, username: str) -> ContactRequestView:
    return await core.transport.request_contact(username)


async def list_requests(core: DeviceCore) -> ContactRequestList:
    return await core.transport.contact_requests()


async def answer_request(core: DeviceCore, request_id: int, answer: ContactAnswer) -> ContactRequestView:
    return await core.transport.answer_contact_request(request_id, answer)


async def list_contacts(core: DeviceCore) -> list[str]:
    return (await core.transport.contacts()).contacts


async def report_account(
    core: DeviceCore, username: str, reason: ReportReason, block: bool
) -> ReportAccepted:
    request = AccountReportRequest(username=username, reason=reason, block=block)
    return await core.transport.report_account(request)


async def notice_key(core: DeviceCore) -> bytes:
    """The pinned notice key, fetched and pinned on first use. Raises TamperError when the server now
    presents a different key than the pinned one."""
    pinned = core.store.get_secret(NOTICE_KEY_SECRET)
    served = await core.transport.notice_key()
    key = b64decode(served.public_key, field="notice key", max_bytes=32)
    if pinned is None:
        core.store.set_secret(NOTICE_KEY_SECRET, key.hex())
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


async def fetch_safety_notices(core: DeviceCore, after: int = 0) -> tuple[list[SafetyNotice], list[str]]:
    key = await notice_key(core)
    signed = await core.transport.safety_notices(after)
    return verify_notices(key, signed.notices, core.username)

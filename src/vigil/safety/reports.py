"""Report verification and case priority. Pure: the server hands in its key and what it stored.

An item is verified only when (1) the revealed payload and franking key reproduce the commitment, (2) the
server's tag over that commitment and the metadata the server saw (sender, conversation, timestamp,
message id) verifies, (3) the payload names that same sender and conversation, (4) the reporter was a
party to the conversation: the other party of a direct conversation, or, in a group, a member when the
server accepted the message (as the sender must have been), and (5) a committed attachment is revealed with
the committed hash and size. Anything else is kept as a claim with the reason it failed, never shown as
proof.

The tag carries everything the server needs, so a message verifies without the server's stored message
record (delivery rows are deleted after delivery): a received one from the tag its delivery carried, one
the reporter's own device sent from the tag the send's answer carried (`SendAccepted.franking_tag`). Only
an item without a tag (a sent record kept before answers carried one) needs the server's record.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pydantic

from vigil.errors import TamperError, ValidationError
from vigil.protocol.encoding import b64decode
from vigil.protocol.franking import FrankingContext, verify_commitment, verify_server_tag
from vigil.protocol.reports import ReportReason
from vigil.protocol.wire import AgeBand, InnerPayload

__all__ = [
    "BAD_FAITH_CEILING",
    "GROUP_PREFIX",
    "UNVERIFIED_CEILING",
    "URGENT_PRIORITY",
    "ClaimedItem",
    "GroupMembership",
    "ItemVerdict",
    "StoredMessage",
    "party_problem",
    "priority_for",
    "priority_label",
    "verify_item",
]


@dataclass(frozen=True, slots=True)
class ClaimedItem:
    """What the reporter revealed for one message (already base64-decoded)."""

    payload: dict[str, object]
    commitment: bytes
    franking_tag: bytes | None
    server_ts_ms: int | None
    attachment: bytes | None


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """The server's own record of an accepted message (metadata only)."""

    sender: str
    conversation: str
    server_ts_ms: int
    commitment: bytes
    franking_tag: bytes


GROUP_PREFIX = "group:"


@dataclass(frozen=True, slots=True)
class GroupMembership:
    """The server's membership history of one group: for each account asked about, every (joined, left)
    period in milliseconds, `left` None while still a member. An account absent was never a member."""

    conversation: str  # "group:<id>"
    periods: Mapping[str, Sequence[tuple[int, int | None]]]

    def was_member(self, username: str, at_ms: int) -> bool:
        """Both ends count: a message accepted in the same millisecond as a join or a leave cannot be
        ordered against it by the clock, and the server's tag already proves it accepted the message."""
        return any(
            joined <= at_ms and (left is None or at_ms <= left)
            for joined, left in self.periods.get(username, ())
        )


@dataclass(frozen=True, slots=True)
class ItemVerdict:
    verified: bool
    reason: str  # why it failed; "verified" when it did not
    payload: InnerPayload | None  # None when the payload does not even parse
    sender: str | None  # the sender as the server saw it (verified) or as claimed
    conversation: str | None
    server_ts_ms: int | None


def _failed(reason: str, payload: InnerPayload | None, ts: int | None = None) -> ItemVerdict:
    return ItemVerdict(
        False,
        reason,
        payload,
        payload.sender if payload else None,
        payload.conversation if payload else None,
        ts,
    )


def _attachment_matches(payload: InnerPayload, data: bytes | None) -> str | None:
    """None when fine, else why not."""
    descriptor = payload.attachment
    if descriptor is None:
        return "an attachment was revealed for a message that has none" if data is not None else None
    if data is None:
        return "the attachment content was not provided"
    try:
        expected = b64decode(descriptor.sha256, field="attachment hash", max_bytes=32)
    except ValidationError:
        return "the committed attachment hash is malformed"
    same_hash = hmac.compare_digest(hashlib.sha256(data).digest(), expected)
    if not same_hash or len(data) != descriptor.size:
        return "the attachment does not match the committed hash"
    return None


def party_problem(reporter: str, context: FrankingContext, membership: GroupMembership | None) -> str | None:
    """None when `reporter` was a party to the message the server tagged with `context`: the other party
    (or the sender) of a direct conversation; in a group, a member when the server accepted it, as the
    sender must have been (`membership`: the group's history for both). Else why not. Shared by report
    items and incoming image-match vouchers."""
    if not context.conversation.startswith(GROUP_PREFIX):
        if reporter not in (context.sender, context.conversation):
            return "the reporter was not a party to this conversation"
        return None
    if membership is None or membership.conversation != context.conversation:
        return "the group's membership history is unknown"
    if not membership.was_member(context.sender, context.server_ts_ms):
        return "the sender was not a member of the group at the message's time"
    if not membership.was_member(reporter, context.server_ts_ms):
        return "the reporter was not a member of the group at the message's time"
    return None


def verify_item(
    server_key: bytes,
    reporter: str,
    claimed: ClaimedItem,
    stored: StoredMessage | None,
    membership: GroupMembership | None = None,
) -> ItemVerdict:
    """Verifies one reported message. A claimed tag and timestamp are checked on their own; only an
    item without them (one the reporter's device sent) needs `stored`, the server's record of the message
    with the payload's id from the payload's claimed sender, when it still has one. A group message needs
    `membership`, the group's history for its sender and the reporter. Never raises on bad input: every
    failure is a verdict with a reason."""
    try:
        payload = InnerPayload.model_validate(claimed.payload)
    except pydantic.ValidationError:
        return _failed("the payload is malformed", None, claimed.server_ts_ms)
    try:
        franking_key = b64decode(payload.franking_key, field="franking key", max_bytes=64)
        verify_commitment(franking_key, payload.franked_bytes(), claimed.commitment)
    except (TamperError, ValidationError):
        return _failed("the message does not match its commitment", payload, claimed.server_ts_ms)
    if claimed.franking_tag is not None and claimed.server_ts_ms is not None:
        context = FrankingContext(
            claimed.commitment, payload.sender, payload.conversation, claimed.server_ts_ms, payload.message_id
        )
        tag = claimed.franking_tag
    elif stored is not None:
        if not hmac.compare_digest(stored.commitment, claimed.commitment):
            return _failed(
                "the commitment differs from the one the server accepted", payload, stored.server_ts_ms
            )
        context = FrankingContext(
            stored.commitment, stored.sender, stored.conversation, stored.server_ts_ms, payload.message_id
        )
        tag = stored.franking_tag
    else:
        return _failed("no server tag: the server holds no record of this message", payload, None)
    try:
        verify_server_tag(server_key, context, tag)
    except (TamperError, ValidationError):
        return _failed("the server's franking tag does not verify", payload, context.server_ts_ms)
    if payload.sender != context.sender or payload.conversation != context.conversation:
        return _failed("the payload names a different sender or conversation", payload, context.server_ts_ms)
    problem = party_problem(reporter, context, membership)
    if problem is not None:
        return _failed(problem, payload, context.server_ts_ms)
    problem = _attachment_matches(payload, claimed.attachment)
    if problem is not None:
        return _failed(problem, payload, context.server_ts_ms)
    return ItemVerdict(True, "verified", payload, context.sender, context.conversation, context.server_ts_ms)


_BASE_PRIORITY = {
    ReportReason.CSAM: 90,
    ReportReason.SEXTORTION: 80,
    ReportReason.GROOMING: 70,
    ReportReason.HARASSMENT: 40,
    ReportReason.SPAM: 20,
    ReportReason.OTHER: 10,
}
_CHILD_SAFETY = frozenset({ReportReason.CSAM, ReportReason.GROOMING, ReportReason.SEXTORTION})


URGENT_PRIORITY = 90
UNVERIFIED_CEILING = URGENT_PRIORITY - 1
"""A claim nothing verified ranks at most "high": only verified evidence (or a reviewer) makes a case
urgent, so a false report cannot jump the queue on its own."""
BAD_FAITH_CEILING = 30
"""Where an unverified claim ranks when its reporter was marked as reporting in bad faith: "low", still
in the queue."""


def priority_for(
    reason: ReportReason, verified: bool, reporter_band: AgeBand, *, bad_faith_reporter: bool = False
) -> int:
    """0-100. Child-safety reasons from a minor rank first; verified evidence ranks above a bare claim, and
    a bare claim never reaches "urgent" (`UNVERIFIED_CEILING`). A claim by a reporter a reviewer marked as
    acting in bad faith ranks "low" (`BAD_FAITH_CEILING`); verified evidence from them keeps its rank."""
    score = _BASE_PRIORITY[reason] + (10 if verified else 0)
    if reporter_band.is_minor and reason in _CHILD_SAFETY:
        score += 25
    if not verified:
        score = min(score, BAD_FAITH_CEILING if bad_faith_reporter else UNVERIFIED_CEILING)
    return min(score, 100)


def priority_label(priority: int) -> str:
    if priority >= URGENT_PRIORITY:
        return "urgent"
    if priority >= 70:
        return "high"
    if priority >= 40:
        return "normal"
    return "low"

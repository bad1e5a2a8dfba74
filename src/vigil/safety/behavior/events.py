"""The metadata event model: exactly what the server legitimately sees (DESIGN.md §1), nothing more.

No event carries content. A message is who -> whom (a user or a group), when, a size bucket and a kind;
contact requests, blocks and reports carry only their parties (and the report's reason code). Account facts
(declared age band, creation time) are kept apart from the event log because they outlive its retention.

Events are frozen, slotted dataclasses: they are built by the hundred thousand per second, so they stay
plain and cheap. `event_to_record`/`event_from_record` convert to and from compact JSON-able dicts for the
simulator's output and for replay.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

from vigil.errors import ValidationError
from vigil.protocol.ids import GroupId, UserId
from vigil.protocol.wire import AgeBand, MessageKind

__all__ = [
    "AccountFacts",
    "AgeBand",
    "Block",
    "ContactRequestAnswered",
    "ContactRequestSent",
    "EventKind",
    "EventSink",
    "GroupCreated",
    "GroupId",
    "GroupJoined",
    "GroupMemberAdded",
    "MessageKind",
    "MessageSent",
    "MetadataEvent",
    "ReportFiled",
    "ReportReason",
    "RequestOutcome",
    "UserId",
    "apply_retention",
    "event_from_record",
    "event_to_record",
    "facts_from_record",
    "facts_to_record",
]


class EventKind(enum.StrEnum):
    MESSAGE_SENT = "msg"
    CONTACT_REQUEST_SENT = "req"
    CONTACT_REQUEST_ACCEPTED = "req_accepted"
    CONTACT_REQUEST_DECLINED = "req_declined"
    CONTACT_REQUEST_IGNORED = "req_ignored"
    BLOCK = "block"
    REPORT = "report"
    GROUP_CREATED = "group_created"
    GROUP_JOINED = "group_joined"
    GROUP_MEMBER_ADDED = "group_member_added"


class RequestOutcome(enum.StrEnum):
    ACCEPTED = "accepted"
    DECLINED = "declined"
    # The server records "ignored" when a request expires unanswered; a minor ignoring a stranger is a signal.
    IGNORED = "ignored"


class ReportReason(enum.StrEnum):
    SEXUAL_CONTENT = "sexual_content"
    GROOMING = "grooming"
    SEXTORTION = "sextortion"
    HARASSMENT = "harassment"
    SPAM = "spam"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class AccountFacts:
    """What the server knows about an account itself: declared age band and creation time."""

    user: UserId
    age_band: AgeBand
    created_at_ms: int


@dataclass(frozen=True, slots=True)
class MessageSent:
    """A message accepted by the server. Exactly one of `recipient` and `group` is set."""

    at_ms: int
    sender: UserId
    recipient: UserId | None
    group: GroupId | None
    size_bucket: int
    content: MessageKind
    kind: ClassVar[EventKind] = EventKind.MESSAGE_SENT


@dataclass(frozen=True, slots=True)
class ContactRequestSent:
    at_ms: int
    requester: UserId
    recipient: UserId
    kind: ClassVar[EventKind] = EventKind.CONTACT_REQUEST_SENT


@dataclass(frozen=True, slots=True)
class ContactRequestAnswered:
    """The recipient's answer (or the request's expiry, recorded as IGNORED)."""

    at_ms: int
    requester: UserId
    recipient: UserId
    outcome: RequestOutcome

    @property
    def kind(self) -> EventKind:
        match self.outcome:
            case RequestOutcome.ACCEPTED:
                return EventKind.CONTACT_REQUEST_ACCEPTED
            case RequestOutcome.DECLINED:
                return EventKind.CONTACT_REQUEST_DECLINED
            case RequestOutcome.IGNORED:
                return EventKind.CONTACT_REQUEST_IGNORED


@dataclass(frozen=True, slots=True)
class Block:
    at_ms: int
    blocker: UserId
    blocked: UserId
    kind: ClassVar[EventKind] = EventKind.BLOCK


@dataclass(frozen=True, slots=True)
class ReportFiled:
    """A user reported another account. The reported content goes to the case, never into this log."""

    at_ms: int
    reporter: UserId
    reported: UserId
    reason: ReportReason
    kind: ClassVar[EventKind] = EventKind.REPORT


@dataclass(frozen=True, slots=True)
class GroupCreated:
    at_ms: int
    creator: UserId
    group: GroupId
    kind: ClassVar[EventKind] = EventKind.GROUP_CREATED


@dataclass(frozen=True, slots=True)
class GroupJoined:
    """A user joined a group by itself (invite link)."""

    at_ms: int
    member: UserId
    group: GroupId
    kind: ClassVar[EventKind] = EventKind.GROUP_JOINED


@dataclass(frozen=True, slots=True)
class GroupMemberAdded:
    at_ms: int
    adder: UserId
    member: UserId
    group: GroupId
    kind: ClassVar[EventKind] = EventKind.GROUP_MEMBER_ADDED


MetadataEvent = (
    MessageSent
    | ContactRequestSent
    | ContactRequestAnswered
    | Block
    | ReportFiled
    | GroupCreated
    | GroupJoined
    | GroupMemberAdded
)


_E = TypeVar("_E", bound=MetadataEvent)


class EventSink(Protocol):
    """Where a producer (the server, or the simulator's fast mode) hands its events, in time order."""

    def emit(self, event: MetadataEvent) -> None: ...


def apply_retention(events: Iterable[_E], now_ms: int, retention_ms: int) -> list[_E]:
    """Keep events no older than `retention_ms` at `now_ms`. Raises ValidationError on a negative limit."""
    if retention_ms < 0:
        raise ValidationError("retention_ms must be >= 0")
    cutoff = now_ms - retention_ms
    return [e for e in events if e.at_ms >= cutoff]


# Compact records: short keys because the simulator writes millions of them.
def event_to_record(event: MetadataEvent) -> dict[str, Any]:
    """A JSON-able dict for `event`; `event_from_record` inverts it."""
    match event:
        case MessageSent():
            rec: dict[str, Any] = {"k": event.kind.value, "t": event.at_ms, "s": event.sender}
            if event.recipient is not None:
                rec["r"] = event.recipient
            if event.group is not None:
                rec["g"] = event.group
            rec["b"] = event.size_bucket
            rec["c"] = event.content.value
            return rec
        case ContactRequestSent():
            return {"k": event.kind.value, "t": event.at_ms, "s": event.requester, "r": event.recipient}
        case ContactRequestAnswered():
            return {"k": event.kind.value, "t": event.at_ms, "s": event.requester, "r": event.recipient}
        case Block():
            return {"k": event.kind.value, "t": event.at_ms, "s": event.blocker, "r": event.blocked}
        case ReportFiled():
            return {
                "k": event.kind.value,
                "t": event.at_ms,
                "s": event.reporter,
                "r": event.reported,
                "why": event.reason.value,
            }
        case GroupCreated():
            return {"k": event.kind.value, "t": event.at_ms, "s": event.creator, "g": event.group}
        case GroupJoined():
            return {"k": event.kind.value, "t": event.at_ms, "s": event.member, "g": event.group}
        case GroupMemberAdded():
            return {
                "k": event.kind.value,
                "t": event.at_ms,
                "s": event.adder,
                "r": event.member,
                "g": event.group,
            }


_OUTCOME_OF_KIND = {
    EventKind.CONTACT_REQUEST_ACCEPTED: RequestOutcome.ACCEPTED,
    EventKind.CONTACT_REQUEST_DECLINED: RequestOutcome.DECLINED,
    EventKind.CONTACT_REQUEST_IGNORED: RequestOutcome.IGNORED,
}


def event_from_record(rec: Mapping[str, Any]) -> MetadataEvent:
    """Rebuild an event from `event_to_record` output. Raises ValidationError on a malformed record."""
    try:
        kind = EventKind(rec["k"])
        at = int(rec["t"])
        s = UserId(str(rec["s"]))
        match kind:
            case EventKind.MESSAGE_SENT:
                r = rec.get("r")
                g = rec.get("g")
                if (r is None) == (g is None):
                    raise ValidationError("message needs exactly one of recipient and group")
                return MessageSent(
                    at,
                    s,
                    None if r is None else UserId(str(r)),
                    None if g is None else GroupId(str(g)),
                    int(rec["b"]),
                    MessageKind(rec["c"]),
                )
            case EventKind.CONTACT_REQUEST_SENT:
                return ContactRequestSent(at, s, UserId(str(rec["r"])))
            case (
                EventKind.CONTACT_REQUEST_ACCEPTED
                | EventKind.CONTACT_REQUEST_DECLINED
                | EventKind.CONTACT_REQUEST_IGNORED
            ):
                return ContactRequestAnswered(at, s, UserId(str(rec["r"])), _OUTCOME_OF_KIND[kind])
            case EventKind.BLOCK:
                return Block(at, s, UserId(str(rec["r"])))
            case EventKind.REPORT:
                return ReportFiled(at, s, UserId(str(rec["r"])), ReportReason(rec["why"]))
            case EventKind.GROUP_CREATED:
                return GroupCreated(at, s, GroupId(str(rec["g"])))
            case EventKind.GROUP_JOINED:
                return GroupJoined(at, s, GroupId(str(rec["g"])))
            case EventKind.GROUP_MEMBER_ADDED:
                return GroupMemberAdded(at, s, UserId(str(rec["r"])), GroupId(str(rec["g"])))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationError(f"malformed event record {dict(rec)!r}: {exc!r}") from exc


def facts_to_record(facts: AccountFacts) -> dict[str, Any]:
    return {"u": facts.user, "age": facts.age_band.value, "created": facts.created_at_ms}


def facts_from_record(rec: Mapping[str, Any]) -> AccountFacts:
    """Raises ValidationError on a malformed record."""
    try:
        return AccountFacts(UserId(str(rec["u"])), AgeBand(rec["age"]), int(rec["created"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationError(f"malformed account record {dict(rec)!r}: {exc!r}") from exc

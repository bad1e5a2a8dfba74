"""What the client hands the app, and the records it keeps: every event type, the one builder of a message
event (1:1 and group alike), the history records a later report needs, and the client's one clock.

The bottom of `vigil.client`: it imports nothing of the client, so every other module may use it.
"""

from __future__ import annotations

import dataclasses
import enum
import time
import types
import typing
from dataclasses import dataclass
from typing import Any, Final

from vigil.errors import StorageError
from vigil.protocol.encoding import b64decode, b64encode
from vigil.protocol.ids import DeviceId, GroupId, MessageId, UserId
from vigil.protocol.verification import SasCancelCode, SasEmoji
from vigil.protocol.wire import Delivery, InnerPayload, MessageKind

__all__ = [
    "GROUP_PREFIX",
    "WITHHELD_NOTICE",
    "Event",
    "GroupUpdated",
    "ImageWithheld",
    "KeyChangeWarning",
    "MessageEvent",
    "ReceivedAttachment",
    "RejectedDelivery",
    "SasCancelled",
    "SasCompleted",
    "SasRequested",
    "SasShowCode",
    "SentMessage",
    "VerificationEvent",
    "event_from_record",
    "event_record",
    "group_id_of",
    "message_event",
    "now_ms",
    "received_record",
    "rejected",
    "sent_record",
    "withheld_event",
]

GROUP_PREFIX: Final = "group:"
WITHHELD_NOTICE: Final = (
    "This image matches a known child sexual abuse image and was not shown. It has been reported to "
    "Vigil's safety team."
)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def group_id_of(conversation: str) -> str | None:
    return conversation.removeprefix(GROUP_PREFIX) if conversation.startswith(GROUP_PREFIX) else None


# ---- messages ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReceivedAttachment:
    data: bytes
    mime: str
    name: str | None


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """A verified message. `conversation` is the other party of a 1:1 chat (or `group:<id>`); `outgoing`
    marks a copy of something this account sent from another of its devices."""

    message_id: MessageId
    conversation: str
    sender: UserId
    sender_device: DeviceId
    kind: MessageKind
    text: str
    attachment: ReceivedAttachment | None
    sent_at_ms: int
    server_ts_ms: int
    outgoing: bool


@dataclass(frozen=True, slots=True)
class RejectedDelivery:
    """A delivery that failed decryption or verification; it was dropped and changed no state."""

    delivery_id: int
    sender: UserId
    sender_device: DeviceId
    reason: str


@dataclass(frozen=True, slots=True)
class SentMessage:
    message_id: MessageId
    server_ts_ms: int
    devices: int


@dataclass(frozen=True, slots=True)
class ImageWithheld:
    """Shown instead of a received image that matched the known-image list (which was not displayed)."""

    message_id: MessageId
    conversation: str
    sender: UserId
    sender_device: DeviceId
    caption: str
    notice: str
    voucher_id: str | None
    sent_at_ms: int
    server_ts_ms: int


# ---- groups --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GroupUpdated:
    """A member told us the group's name and topic (only members ever see them)."""

    group_id: GroupId
    name: str
    topic: str
    by: UserId


# ---- verification --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyChangeWarning:
    """A contact's devices or identity keys changed. `was_verified` marks the loud case."""

    username: UserId
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed_keys: tuple[str, ...]
    was_verified: bool


@dataclass(frozen=True, slots=True)
class SasRequested:
    transaction_id: str
    username: UserId
    device_id: DeviceId


@dataclass(frozen=True, slots=True)
class SasShowCode:
    """Show these to the user; both sides must see the same before `confirm_sas`."""

    transaction_id: str
    username: UserId
    device_id: DeviceId
    emoji: tuple[SasEmoji, ...]
    decimals: tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class SasCompleted:
    transaction_id: str
    username: UserId
    device_id: DeviceId


@dataclass(frozen=True, slots=True)
class SasCancelled:
    transaction_id: str
    username: UserId
    device_id: DeviceId
    code: SasCancelCode
    reason: str
    by_peer: bool


VerificationEvent = KeyChangeWarning | SasRequested | SasShowCode | SasCompleted | SasCancelled
Event = MessageEvent | RejectedDelivery | GroupUpdated | VerificationEvent | ImageWithheld


# ---- builders ------------------------------------------------------------------------------------


def rejected(delivery: Delivery, reason: str) -> RejectedDelivery:
    sender, device = UserId(delivery.sender), DeviceId(delivery.sender_device)
    return RejectedDelivery(delivery.delivery_id, sender, device, reason)


def message_event(
    payload: InnerPayload, delivery: Delivery, attachment: ReceivedAttachment | None, me: str
) -> MessageEvent:
    """The event of a verified payload. A group message stays in its `group:<id>` conversation; a 1:1
    message is filed under the other party (the recipient when this account sent it)."""
    outgoing = payload.sender == me
    in_group = group_id_of(payload.conversation) is not None
    return MessageEvent(
        message_id=MessageId(payload.message_id),
        conversation=payload.conversation if outgoing or in_group else payload.sender,
        sender=UserId(payload.sender),
        sender_device=DeviceId(delivery.sender_device),
        kind=payload.kind,
        text=payload.body,
        attachment=attachment,
        sent_at_ms=payload.sent_at_ms,
        server_ts_ms=delivery.server_ts_ms,
        outgoing=outgoing,
    )


def withheld_event(
    payload: InnerPayload, delivery: Delivery, conversation: str, voucher_id: str | None
) -> ImageWithheld:
    return ImageWithheld(
        message_id=MessageId(payload.message_id),
        conversation=conversation,
        sender=UserId(payload.sender),
        sender_device=DeviceId(delivery.sender_device),
        caption=payload.body,
        notice=WITHHELD_NOTICE,
        voucher_id=voucher_id,
        sent_at_ms=payload.sent_at_ms,
        server_ts_ms=delivery.server_ts_ms,
    )


def sent_record(payload: InnerPayload) -> dict[str, object]:
    """The history record of a message this device sent (the report recomputes its commitment)."""
    return {"payload": payload.model_dump(mode="json")}


def received_record(
    payload: InnerPayload, delivery: Delivery, commitment: bytes, franking_tag: bytes
) -> dict[str, object]:
    """Everything a later report needs: the payload with its franking key, commitment and server tag."""
    return {
        "payload": payload.model_dump(mode="json"),
        "commitment": b64encode(commitment),
        "franking_tag": b64encode(franking_tag),
        "server_ts_ms": delivery.server_ts_ms,
        "sender_device": delivery.sender_device,
    }


# ---- the inbox record of an event ----------------------------------------------------------------
# Events wait in the encrypted store until the app has consumed them, so each one has a JSON record.
# The codec follows each dataclass's annotations, so a field added to an event is stored with no change here.

_EVENT_TYPES: Final[dict[str, type[Any]]] = {
    cls.__name__: cls
    for cls in (
        MessageEvent,
        RejectedDelivery,
        GroupUpdated,
        KeyChangeWarning,
        SasRequested,
        SasShowCode,
        SasCompleted,
        SasCancelled,
        ImageWithheld,
    )
}


def event_record(event: Event) -> dict[str, object]:
    """The JSON-ready record of `event` (bytes as base64); `event_from_record` turns it back."""
    return {"type": type(event).__name__, "fields": _encode(event)}


def event_from_record(record: dict[str, Any]) -> Event:
    """Raises StorageError for a record no event type of this version reads."""
    cls = _EVENT_TYPES.get(str(record.get("type")))
    if cls is None:
        raise StorageError(f"the device store holds an event of an unknown type {record.get('type')!r}")
    event: Event = _decode(cls, record["fields"])
    return event


def _encode(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, bytes):
        return b64encode(value)
    if isinstance(value, tuple | list):
        return [_encode(item) for item in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _decode(annotation: Any, value: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        (kind,) = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return _decode(kind, value)
    if origin is tuple:
        args = typing.get_args(annotation)
        kinds = [args[0]] * len(value) if args[-1] is Ellipsis else list(args)
        return tuple(_decode(kind, item) for kind, item in zip(kinds, value, strict=True))
    annotation = getattr(annotation, "__supertype__", annotation)  # the NewType ids are str at run time
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        hints = typing.get_type_hints(annotation)
        fields = dataclasses.fields(annotation)
        return annotation(**{f.name: _decode(hints[f.name], value[f.name]) for f in fields})
    if annotation is bytes:
        return b64decode(value, field="stored event")
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return annotation(value)
    return value

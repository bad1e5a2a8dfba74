"""Wire models for groups and device-to-device control messages. Version 1.

Kept beside `wire.py` rather than in it so the group feature is one reviewable unit. What the server sees
of a group: an opaque id, who is a member with which role, and when they joined. The group's name and
topic travel only inside Olm ciphertexts (`GroupMeta`), its messages only as one Megolm ciphertext.

Group ciphertext framing (the queue body of a `MEGOLM_MESSAGE_TYPE` delivery, opaque to the server):
`0x01 || raw Megolm session id (32-byte Ed25519 key) || vodozemac Megolm message`.
"""

from __future__ import annotations

import base64
import enum
import uuid
from functools import cache
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, field_validator

from vigil.errors import ValidationError
from vigil.protocol.encoding import b64decode
from vigil.protocol.megolm import MAX_MEGOLM_MESSAGE_BYTES, MegolmCiphertext, RoomKeyShare
from vigil.protocol.verification import SasAccept, SasCancel, SasKey, SasMac, SasStart
from vigil.protocol.wire import (
    MAX_ATTACHMENTS_PER_MESSAGE,
    MAX_OLM_CIPHERTEXT_BYTES,
    DeviceInfo,
    MessageKind,
)

__all__ = [
    "GROUP_ID_PATTERN",
    "INVITE_TOKEN_PATTERN",
    "MAX_GROUP_MEMBERS",
    "AddMemberRequest",
    "ControlPayload",
    "CreateGroupRequest",
    "GroupDevices",
    "GroupInfo",
    "GroupList",
    "GroupMember",
    "GroupMeta",
    "GroupRole",
    "GroupSendRequest",
    "GroupSummary",
    "InviteLink",
    "JoinGroupRequest",
    "ToDeviceAccepted",
    "ToDeviceCiphertext",
    "ToDeviceRequest",
    "group_conversation",
    "pack_group_ciphertext",
    "parse_control_payload",
    "unpack_group_ciphertext",
]

MAX_GROUP_MEMBERS = 1000
MAX_TO_DEVICE_MESSAGES = 1000
GROUP_ID_PATTERN = r"^[a-f0-9]{32}$"
# An invite link's secret: 32 random bytes, URL-safe base64 without padding (`secrets.token_urlsafe(32)`).
INVITE_TOKEN_PATTERN = r"^[A-Za-z0-9_-]{43}$"  # noqa: S105 - a pattern, not a secret
_FRAMING_VERSION = 1
_SESSION_ID_BYTES = 32

Username = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{3,32}$")]
DeviceIdStr = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
GroupIdStr = Annotated[str, StringConstraints(pattern=GROUP_ID_PATTERN)]
BlobIdStr = Annotated[str, StringConstraints(pattern=r"^[a-f0-9]{32}$")]


def group_conversation(group_id: str) -> str:
    """The conversation name of a group in payloads, deliveries and franking tags."""
    return f"group:{group_id}"


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError as error:
        raise ValueError("id must be a UUID chosen by the client") from error


class GroupRole(enum.StrEnum):
    ADMIN = "admin"
    MEMBER = "member"


class CreateGroupRequest(_Request):
    """The creator becomes the first admin; `members` are added as plain members."""

    members: list[Username] = Field(default_factory=list, max_length=MAX_GROUP_MEMBERS - 1)


class AddMemberRequest(_Request):
    username: Username
    role: GroupRole = GroupRole.MEMBER


class InviteLink(_Response):
    """A group's invite link as its admin receives it. The server keeps only the token's SHA-256, so the
    token is shown once, here; whoever holds it can ask to join (`JoinGroupRequest`)."""

    group_id: str
    token: str
    created_at_ms: int


class JoinGroupRequest(_Request):
    """Join a group by its invite link. The token travels in the body, never in a URL the server logs."""

    token: Annotated[str, StringConstraints(pattern=INVITE_TOKEN_PATTERN)]


class GroupMember(_Response):
    username: str
    role: GroupRole
    joined_at_ms: int


class GroupInfo(_Response):
    group_id: str
    members: list[GroupMember]


class GroupSummary(_Response):
    group_id: str
    role: GroupRole
    members: int


class GroupList(_Response):
    groups: list[GroupSummary]


class GroupDevices(_Response):
    """Every device of every member, by username (the caller's own devices included)."""

    group_id: str
    devices: dict[str, list[DeviceInfo]]


class GroupSendRequest(_Request):
    """One group message: one Megolm ciphertext (framed, base64) for every device in `devices`.

    `devices` are the recipient devices the sender shared the current session key with: every device
    of every member except the sending one. A mismatch with the server's view is a 409 `stale_devices`.
    """

    id: str = Field(min_length=1, max_length=64)
    kind: MessageKind
    commitment: Annotated[str, StringConstraints(min_length=44, max_length=44)]
    body: Annotated[str, StringConstraints(min_length=4, max_length=(MAX_MEGOLM_MESSAGE_BYTES * 4) // 3 + 8)]
    devices: list[DeviceIdStr] = Field(max_length=MAX_GROUP_MEMBERS * 16)
    attachments: list[BlobIdStr] = Field(default_factory=list, max_length=MAX_ATTACHMENTS_PER_MESSAGE)

    @field_validator("id")
    @classmethod
    def _id_is_uuid(cls, value: str) -> str:
        return _uuid(value)

    @field_validator("commitment")
    @classmethod
    def _commitment_is_32_bytes(cls, value: str) -> str:
        if len(b64decode(value, field="commitment", max_bytes=32)) != 32:
            raise ValueError("commitment must be 32 bytes")
        return value

    @field_validator("body")
    @classmethod
    def _body_is_framed(cls, value: str) -> str:
        unpack_group_ciphertext(
            b64decode(value, field="group ciphertext", max_bytes=MAX_MEGOLM_MESSAGE_BYTES + 64)
        )
        return value


class ToDeviceCiphertext(_Request):
    username: Username
    device_id: DeviceIdStr
    type: Literal[0, 1]
    body: Annotated[str, StringConstraints(min_length=4, max_length=(MAX_OLM_CIPHERTEXT_BYTES * 4) // 3 + 4)]

    @field_validator("body")
    @classmethod
    def _body_is_base64(cls, value: str) -> str:
        b64decode(value, field="ciphertext body", max_bytes=MAX_OLM_CIPHERTEXT_BYTES)
        return value


class ToDeviceRequest(_Request):
    """Control messages (room keys, group metadata, SAS), each Olm-encrypted for one device.

    `conversation` is `group:<id>` for group key traffic (every target must then be a member's device,
    and the sender a member) or a username for verification (targets are that user's devices).
    """

    id: str = Field(min_length=1, max_length=64)
    conversation: str = Field(min_length=3, max_length=80)
    messages: list[ToDeviceCiphertext] = Field(min_length=1, max_length=MAX_TO_DEVICE_MESSAGES)

    @field_validator("id")
    @classmethod
    def _id_is_uuid(cls, value: str) -> str:
        return _uuid(value)


class ToDeviceAccepted(_Response):
    message_id: str
    devices: int


# --- inside the Olm ciphertext only -------------------------------------------------------------------


class GroupMeta(BaseModel):
    """A group's name and topic, sent member to member; the server never sees them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1
    type: Literal["group_meta"] = "group_meta"
    group_id: GroupIdStr
    name: str = Field(max_length=100)
    topic: str = Field(default="", max_length=500)


ControlPayload = Annotated[
    RoomKeyShare | GroupMeta | SasStart | SasAccept | SasKey | SasMac | SasCancel, Field(discriminator="type")
]
ControlMessage = RoomKeyShare | GroupMeta | SasStart | SasAccept | SasKey | SasMac | SasCancel


@cache
def _control_adapter() -> TypeAdapter[ControlMessage]:
    return TypeAdapter(ControlPayload)


def parse_control_payload(data: bytes) -> ControlMessage:
    """Raises ValidationError if `data` is not one of the control messages."""
    try:
        return _control_adapter().validate_json(data)
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        raise ValidationError("not a control message") from error


def pack_group_ciphertext(ciphertext: MegolmCiphertext) -> bytes:
    """Raises ValidationError if the session id is not an unpadded base64 Ed25519 key."""
    try:
        raw = base64.b64decode(ciphertext.session_id + "=", validate=True)
    except ValueError as error:
        raise ValidationError("Megolm session id is malformed") from error
    if len(raw) != _SESSION_ID_BYTES:
        raise ValidationError("Megolm session id is malformed")
    return bytes([_FRAMING_VERSION]) + raw + ciphertext.body


def unpack_group_ciphertext(data: bytes) -> MegolmCiphertext:
    """Raises ValidationError on an unknown framing version or a body too short to hold a message."""
    if len(data) <= 1 + _SESSION_ID_BYTES or data[0] != _FRAMING_VERSION:
        raise ValidationError("not a framed group ciphertext")
    session_id = base64.b64encode(data[1 : 1 + _SESSION_ID_BYTES]).decode("ascii").rstrip("=")
    return MegolmCiphertext(session_id, data[1 + _SESSION_ID_BYTES :])

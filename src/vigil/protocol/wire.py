"""Pydantic models of everything on the wire. Version 1.

Requests forbid unknown fields so a typo is an error, not a silently dropped option. Binary values travel
as standard base64 (vodozemac's own keys as its unpadded base64); sizes are bounded here so the server can
reject oversized input before touching it.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from vigil.protocol.encoding import b64decode, canonical_json

__all__ = [
    "MAX_ACK_IDS",
    "MAX_CIPHERTEXTS_PER_SEND",
    "MAX_OLM_CIPHERTEXT_BYTES",
    "MAX_WIRE_INT",
    "MEGOLM_MESSAGE_TYPE",
    "AckRequest",
    "AddDeviceRequest",
    "AgeBand",
    "AttachmentDescriptor",
    "BlobUploaded",
    "ClaimKeysRequest",
    "ClaimedDevice",
    "ClaimedKeys",
    "Delivery",
    "DeviceCredential",
    "DeviceInfo",
    "DeviceKeys",
    "DeviceList",
    "ErrorBody",
    "FetchResponse",
    "InnerPayload",
    "KeyCounts",
    "MessageKind",
    "OlmCiphertext",
    "RegisterAccountRequest",
    "SendAccepted",
    "SendRequest",
    "SignedKey",
    "StaleDevices",
    "UploadKeysRequest",
]

WIRE_VERSION: Literal[1] = 1
MAX_CIPHERTEXTS_PER_SEND = 1000
MAX_OLM_CIPHERTEXT_BYTES = 96 * 1024
MAX_ONE_TIME_KEYS_PER_UPLOAD = 100
MAX_ATTACHMENTS_PER_MESSAGE = 10
MEGOLM_MESSAGE_TYPE = 2  # Delivery.type of a group message: one Megolm ciphertext shared by all members
# The largest integer the server accepts anywhere (ids, cursors, timestamps): a signed 64-bit column holds
# it, so a larger one is refused at the edge (422 naming the field) instead of failing in the database.
MAX_WIRE_INT = 2**63 - 1

Username = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{3,32}$")]
DeviceIdStr = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
MessageIdStr = Annotated[str, StringConstraints(min_length=1, max_length=64)]
B64Key = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]{40,48}={0,2}$")]
B64Signature = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]{80,92}={0,2}$")]
BlobIdStr = Annotated[str, StringConstraints(pattern=r"^[a-f0-9]{32}$")]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class AgeBand(enum.StrEnum):
    UNDER_13 = "under_13"
    TEEN_13_15 = "13_15"
    TEEN_16_17 = "16_17"
    ADULT = "adult"

    @property
    def is_minor(self) -> bool:
        match self:
            case AgeBand.UNDER_13 | AgeBand.TEEN_13_15 | AgeBand.TEEN_16_17:
                return True
            case AgeBand.ADULT:
                return False

    @classmethod
    def from_birth_date(cls, birth_date: dt.date, today: dt.date) -> AgeBand:
        age = today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))
        if age < 13:
            return cls.UNDER_13
        if age < 16:
            return cls.TEEN_13_15
        if age < 18:
            return cls.TEEN_16_17
        return cls.ADULT


class MessageKind(enum.StrEnum):
    TEXT = "text"
    IMAGE = "image"
    FILE = "file"
    # Device-to-device key and verification traffic (room keys, SAS); never user content, never franked.
    CONTROL = "control"


class DeviceKeys(_Request):
    """A device's identity keys, self-signed by its Ed25519 key (see `vigil.protocol.olm`)."""

    curve25519: B64Key
    ed25519: B64Key
    signature: B64Signature


class SignedKey(_Request):
    key_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/=_-]{1,32}$")]
    key: B64Key
    signature: B64Signature


class RegisterAccountRequest(_Request):
    username: Username
    birth_date: dt.date
    device: DeviceKeys


class AddDeviceRequest(_Request):
    device: DeviceKeys


class DeviceCredential(_Response):
    username: str
    device_id: str
    credential: str
    age_band: AgeBand


class UploadKeysRequest(_Request):
    one_time_keys: list[SignedKey] = Field(default_factory=list, max_length=MAX_ONE_TIME_KEYS_PER_UPLOAD)
    fallback_key: SignedKey | None = None


class KeyCounts(_Response):
    one_time_keys: int
    fallback_key: bool


class ClaimKeysRequest(_Request):
    username: Username
    # Only these devices (those the caller has no session with); all of the user's devices when absent.
    device_ids: list[DeviceIdStr] | None = Field(default=None, max_length=64)


class DeviceInfo(_Response):
    device_id: str
    keys: DeviceKeys


class DeviceList(_Response):
    username: str
    devices: list[DeviceInfo]


class ClaimedDevice(_Response):
    device_id: str
    keys: DeviceKeys
    one_time_key: SignedKey | None
    is_fallback: bool


class ClaimedKeys(_Response):
    username: str
    devices: list[ClaimedDevice]


class OlmCiphertext(_Request):
    device_id: DeviceIdStr
    type: Literal[0, 1]  # 0 pre-key message, 1 normal message (vodozemac's message types)
    body: Annotated[str, StringConstraints(min_length=4, max_length=(MAX_OLM_CIPHERTEXT_BYTES * 4) // 3 + 4)]

    @field_validator("body")
    @classmethod
    def _body_is_base64(cls, value: str) -> str:
        b64decode(value, field="ciphertext body", max_bytes=MAX_OLM_CIPHERTEXT_BYTES)
        return value


# The form `str(uuid.UUID(value))` gives; any other spelling of a UUID is parsed and rewritten to it.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class SendRequest(_Request):
    """One message: one Olm ciphertext per recipient device and per the sender's own other devices."""

    id: Annotated[MessageIdStr, Field(json_schema_extra={"format": "uuid"})]
    to: Username
    kind: MessageKind
    commitment: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]{43}=$")]  # 32 bytes, base64
    ciphertexts: list[OlmCiphertext] = Field(min_length=1, max_length=MAX_CIPHERTEXTS_PER_SEND)
    attachments: list[BlobIdStr] = Field(default_factory=list, max_length=MAX_ATTACHMENTS_PER_MESSAGE)

    @field_validator("id")
    @classmethod
    def _id_is_uuid(cls, value: str) -> str:
        if _CANONICAL_UUID.fullmatch(value):  # already what str(UUID(value)) gives: the common case
            return value
        try:
            return str(uuid.UUID(value))
        except ValueError as error:
            raise ValueError("id must be a UUID chosen by the client") from error

    @field_validator("commitment")
    @classmethod
    def _commitment_is_32_bytes(cls, value: str) -> str:
        if len(b64decode(value, field="commitment", max_bytes=32)) != 32:
            raise ValueError("commitment must be 32 bytes")
        return value


class SendAccepted(_Response):
    """`franking_tag` is the server's tag over (commitment, sender, conversation, server_ts_ms, message
    id): the sending device keeps it so a later report can prove its own message after the server has
    deleted the delivery record. None only from a server that predates it."""

    message_id: str
    server_ts_ms: int
    devices: int
    duplicate: bool = False
    franking_tag: str | None = None


class StaleDevices(_Response):
    """409 body: the device lists the sender must encrypt for, per user."""

    error: Literal["stale_devices"] = "stale_devices"
    detail: str
    missing: dict[str, list[str]]
    extra: dict[str, list[str]]
    devices: dict[str, list[DeviceInfo]]


class Delivery(_Response):
    """One queued message for one device, as the recipient device receives it. `delivery_id` is what
    the device acks; `message_id` is the sender's id, the same on every device."""

    delivery_id: int
    message_id: str
    sender: str
    sender_device: str
    conversation: str
    kind: MessageKind
    commitment: str
    franking_tag: str
    server_ts_ms: int
    type: Literal[0, 1, 2]  # Olm pre-key / normal, or MEGOLM_MESSAGE_TYPE for a group message
    body: str


class FetchResponse(_Response):
    messages: list[Delivery]
    more: bool


MAX_ACK_IDS = 1000


class AckRequest(_Request):
    delivery_ids: list[Annotated[int, Field(ge=1, le=MAX_WIRE_INT)]] = Field(
        min_length=1, max_length=MAX_ACK_IDS
    )


class BlobUploaded(_Response):
    blob_id: str
    size: int


class ErrorBody(_Response):
    error: str
    detail: Any = None


class AttachmentDescriptor(BaseModel):
    """Inside the ciphertext only: what the recipient needs to fetch, decrypt and check a blob."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    blob_id: BlobIdStr
    key: str
    sha256: str
    size: int = Field(ge=0, le=MAX_WIRE_INT)
    mime: Annotated[str, StringConstraints(pattern=r"^[a-z0-9.+-]+/[a-z0-9.+-]+$", max_length=100)]
    name: str | None = Field(default=None, max_length=255)


class InnerPayload(BaseModel):
    """The plaintext inside every Olm/Megolm ciphertext. Only the two ends ever see it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = WIRE_VERSION
    message_id: MessageIdStr
    sender: Username
    conversation: str = Field(max_length=80)
    sent_at_ms: int = Field(ge=0, le=MAX_WIRE_INT)
    kind: MessageKind
    body: str = Field(default="", max_length=64 * 1024)
    attachment: AttachmentDescriptor | None = None
    franking_key: str

    def franked_bytes(self) -> bytes:
        """What the franking commitment covers: every field except the franking key itself."""
        return canonical_json(self.model_dump(mode="json", exclude={"franking_key"}))

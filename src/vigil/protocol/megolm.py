"""Typed wrappers over vodozemac's Megolm group sessions, the room-key share, and the rotation policy.

A group sender owns one `OutboundGroupSession` and shares its `GroupSessionKey` with every member device
inside a pairwise Olm ciphertext (`RoomKeyShare`). Members decrypt with an `InboundGroupSession`. A member
who joins later receives the key at the current index and cannot read anything sent before; history is
shared only explicitly, by exporting an inbound session at an index.

Why the share is signed by the sending device: the Olm channel already authenticates the peer's Curve25519
key, but a share can be re-sent (explicit history sharing) by a device other than the one that created
the session. The creator's Ed25519 signature over (group, session id, creator identity) lets any member
check the session's origin no matter who forwarded it; the session id *is* the Megolm signing key, so
every message decrypted under it is bound to the creator device too.

vodozemac's exceptions have no common root; every call here turns them into `vigil.errors` types.
Pickles are always encrypted with a caller-supplied 32-byte key.
"""

from __future__ import annotations

import base64
import binascii
import enum
from dataclasses import dataclass, field
from typing import Annotated, Literal

import vodozemac
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from vigil.errors import DecryptionError, StorageError, TamperError, ValidationError
from vigil.protocol.encoding import length_prefixed
from vigil.protocol.olm import PICKLE_KEY_BYTES, DeviceAccount, verify_device_keys
from vigil.protocol.wire import DeviceKeys

__all__ = [
    "DEFAULT_MAX_AGE_MS",
    "DEFAULT_MAX_MESSAGES",
    "MAX_MEGOLM_MESSAGE_BYTES",
    "DecryptedGroupMessage",
    "GroupKeyKind",
    "GroupSessionKey",
    "GroupSessionStats",
    "InboundGroupSession",
    "MegolmCiphertext",
    "OutboundGroupSession",
    "RoomKeyShare",
    "RotationPolicy",
    "RotationReason",
    "accept_room_key",
    "forward_room_key",
    "new_room_key_share",
    "rotation_reason",
    "should_rotate",
]

# Matrix's defaults: a week or 100 messages, whichever comes first, bounds how much one leaked
# ratchet state exposes.
DEFAULT_MAX_MESSAGES = 100
DEFAULT_MAX_AGE_MS = 7 * 24 * 3600 * 1000

_ROOM_KEY_CONTEXT = b"vigil-room-key-v1"
_MEGOLM_SIGNATURE_BYTES = 64
# Largest Megolm message we accept: a 64 KiB text body plus the envelope, base64 and AES padding.
MAX_MEGOLM_MESSAGE_BYTES = 128 * 1024


def _check_pickle_key(pickle_key: bytes) -> None:
    if len(pickle_key) != PICKLE_KEY_BYTES:
        raise ValidationError(f"pickle key must be {PICKLE_KEY_BYTES} bytes")


def _unpadded_b64decode(text: str, what: str) -> bytes:
    """vodozemac speaks unpadded standard base64; refuse anything else before it sees the input."""
    if not text or "=" in text:
        raise ValidationError(f"{what} is not unpadded base64")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValidationError(f"{what} is not unpadded base64") from error


class GroupKeyKind(enum.StrEnum):
    SESSION = "session"  # the creator's signed key, valid from the index it was taken at
    EXPORTED = "exported"  # an inbound session exported at an index (history sharing); unsigned


@dataclass(frozen=True, slots=True, repr=False)
class GroupSessionKey:
    """Secret material that lets its holder decrypt a group session from `first_index` on.

    repr is the default object repr so the key never ends up in a log line by accident.
    """

    kind: GroupKeyKind
    value: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class MegolmCiphertext:
    """One group message as it travels: the session it belongs to and vodozemac's message bytes."""

    session_id: str
    body: bytes

    @property
    def claimed_index(self) -> int:
        """The index written in the message. Unauthenticated until `InboundGroupSession.decrypt`.

        Raises DecryptionError if the bytes are not a Megolm message.
        """
        return _parse_message(self.body).message_index()


@dataclass(frozen=True, slots=True)
class DecryptedGroupMessage:
    plaintext: bytes
    message_index: int


def _parse_message(body: bytes) -> vodozemac.MegolmMessage:
    if len(body) > MAX_MEGOLM_MESSAGE_BYTES:
        raise DecryptionError("Megolm message is too large")
    try:
        return vodozemac.MegolmMessage.from_bytes(body)
    except (vodozemac.DecodeException, ValueError) as error:
        raise DecryptionError("malformed Megolm message") from error


def _signature_valid(session_id: str, body: bytes) -> bool:
    """Whether the Megolm signing key (the session id) signed these message bytes."""
    if len(body) <= _MEGOLM_SIGNATURE_BYTES:
        return False
    signature = base64.b64encode(body[-_MEGOLM_SIGNATURE_BYTES:]).decode("ascii").rstrip("=")
    try:
        public = vodozemac.Ed25519PublicKey.from_base64(session_id)
        public.verify_signature(
            body[:-_MEGOLM_SIGNATURE_BYTES], vodozemac.Ed25519Signature.from_base64(signature)
        )
    except (vodozemac.KeyException, vodozemac.SignatureException, ValueError):
        return False
    return True


class OutboundGroupSession:
    """The sending side of a group session: one ratchet, one signing key, one ciphertext for everyone."""

    __slots__ = ("_session",)

    def __init__(self, session: vodozemac.GroupSession | None = None) -> None:
        self._session = session if session is not None else vodozemac.GroupSession()

    @property
    def session_id(self) -> str:
        return str(self._session.session_id)

    @property
    def message_index(self) -> int:
        """Index the next message will get; also the number of messages sent so far."""
        return int(self._session.message_index)

    def session_key(self) -> GroupSessionKey:
        """The key at the current index: whoever receives it reads from the next message on."""
        return GroupSessionKey(GroupKeyKind.SESSION, str(self._session.session_key.to_base64()))

    def encrypt(self, plaintext: bytes) -> MegolmCiphertext:
        return MegolmCiphertext(self.session_id, bytes(self._session.encrypt(plaintext).to_bytes()))

    def pickle(self, pickle_key: bytes) -> str:
        """Raises ValidationError if the key is not 32 bytes."""
        _check_pickle_key(pickle_key)
        return str(self._session.pickle(pickle_key))

    @classmethod
    def from_pickle(cls, pickled: str, pickle_key: bytes) -> OutboundGroupSession:
        """Raises StorageError if the pickle is corrupt or the key is wrong."""
        _check_pickle_key(pickle_key)
        try:
            return cls(vodozemac.GroupSession.from_pickle(pickled, pickle_key))
        except (vodozemac.PickleException, ValueError) as error:
            raise StorageError("group session pickle does not open with this key") from error


class InboundGroupSession:
    """The receiving side of a group session.

    vodozemac checks the message signature before touching the ratchet, keeps the ratchet at the first
    known index untouched, and only caches an advanced copy; so a message that fails leaves the session
    able to decrypt exactly what it could before. Megolm itself does not detect replays: the caller keeps
    (session_id, message_index) -> message id and rejects a second message with the same pair.
    """

    __slots__ = ("_session",)

    def __init__(self, session: vodozemac.InboundGroupSession) -> None:
        self._session = session

    @classmethod
    def from_key(cls, key: GroupSessionKey) -> InboundGroupSession:
        """Raises ValidationError on a malformed key, TamperError if a session key's signature fails."""
        _unpadded_b64decode(key.value, "group session key")
        match key.kind:
            case GroupKeyKind.SESSION:
                try:
                    return cls(vodozemac.InboundGroupSession(vodozemac.SessionKey(key.value)))
                except (vodozemac.SessionKeyDecodeException, ValueError) as error:
                    # Base64 was checked above, so what is left is a bad self-signature or bad layout.
                    raise TamperError("group session key does not verify") from error
            case GroupKeyKind.EXPORTED:
                try:
                    exported = vodozemac.ExportedSessionKey(key.value)
                    return cls(vodozemac.InboundGroupSession.import_session(exported))
                except (vodozemac.SessionKeyDecodeException, ValueError) as error:
                    raise ValidationError("exported group session key is malformed") from error

    @property
    def session_id(self) -> str:
        return str(self._session.session_id)

    @property
    def first_known_index(self) -> int:
        return int(self._session.first_known_index)

    def decrypt(self, ciphertext: MegolmCiphertext) -> DecryptedGroupMessage:
        """Raises TamperError if the message is not signed by this session's sender (forged or altered),
        DecryptionError if it is for another session, malformed, or older than `first_known_index`."""
        if ciphertext.session_id != self.session_id:
            raise DecryptionError("message belongs to another group session")
        message = _parse_message(ciphertext.body)
        try:
            decrypted = self._session.decrypt(message)
        except (vodozemac.MegolmDecryptionException, ValueError) as error:
            # Classify only on the failure path so the success path pays for one signature check, not two.
            if not _signature_valid(self.session_id, ciphertext.body):
                raise TamperError("group message signature does not verify") from error
            raise DecryptionError("group message does not decrypt under this session") from error
        return DecryptedGroupMessage(bytes(decrypted.plaintext), int(decrypted.message_index))

    def export_at(self, index: int) -> GroupSessionKey:
        """The key from `index` on, for explicit history sharing.

        Raises ValidationError if `index` is negative or before `first_known_index`.
        """
        if index < self.first_known_index or index > 0xFFFFFFFF:
            raise ValidationError(f"cannot export before index {self.first_known_index}")
        exported = self._session.export_at(index)
        if exported is None:
            raise ValidationError(f"cannot export before index {self.first_known_index}")
        return GroupSessionKey(GroupKeyKind.EXPORTED, str(exported.to_base64()))

    def pickle(self, pickle_key: bytes) -> str:
        """Raises ValidationError if the key is not 32 bytes."""
        _check_pickle_key(pickle_key)
        return str(self._session.pickle(pickle_key))

    @classmethod
    def from_pickle(cls, pickled: str, pickle_key: bytes) -> InboundGroupSession:
        """Raises StorageError if the pickle is corrupt or the key is wrong."""
        _check_pickle_key(pickle_key)
        try:
            return cls(vodozemac.InboundGroupSession.from_pickle(pickled, pickle_key))
        except (vodozemac.PickleException, ValueError) as error:
            raise StorageError("inbound group session pickle does not open with this key") from error


# --- the room-key share (travels only inside a pairwise Olm ciphertext) ---------------------------------

_Username = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{3,32}$")]
_DeviceId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
_GroupId = Annotated[str, StringConstraints(min_length=1, max_length=80)]
_B64Key = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]{43}$")]
_B64Signature = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]{86}$")]
_B64SessionKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]{100,400}$")]


class RoomKeyShare(BaseModel):
    """A group session key for one recipient device. Never sent outside an Olm ciphertext.

    `creator_*` name the device that created the session and `creator_signature` is its Ed25519 signature
    over (group_id, session_id, creator identity). `recipient_ed25519` pins the device it was made for.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1
    type: Literal["room_key"] = "room_key"
    group_id: _GroupId
    session_id: _B64Key
    key_kind: GroupKeyKind
    session_key: _B64SessionKey = Field(repr=False)
    creator: _Username
    creator_device: _DeviceId
    creator_curve25519: _B64Key
    creator_ed25519: _B64Key
    creator_signature: _B64Signature
    recipient: _Username
    recipient_device: _DeviceId
    recipient_ed25519: _B64Key

    def key(self) -> GroupSessionKey:
        return GroupSessionKey(self.key_kind, self.session_key)


def _room_key_message(
    group_id: str, session_id: str, creator: str, creator_device: str, curve25519: str, ed25519: str
) -> bytes:
    return length_prefixed(
        _ROOM_KEY_CONTEXT,
        group_id.encode(),
        session_id.encode(),
        creator.encode(),
        creator_device.encode(),
        curve25519.encode(),
        ed25519.encode(),
    )


def new_room_key_share(
    account: DeviceAccount,
    session: OutboundGroupSession,
    *,
    group_id: str,
    creator: str,
    creator_device: str,
    recipient: str,
    recipient_device: str,
    recipient_ed25519: str,
) -> RoomKeyShare:
    """The share of `session`'s current key for one recipient device, signed by the creating device.

    Raises ValidationError if an identifier or key is malformed.
    """
    signature = account.sign(
        _room_key_message(
            group_id, session.session_id, creator, creator_device, account.curve25519, account.ed25519
        )
    )
    try:
        return RoomKeyShare(
            group_id=group_id,
            session_id=session.session_id,
            key_kind=GroupKeyKind.SESSION,
            session_key=session.session_key().value,
            creator=creator,
            creator_device=creator_device,
            creator_curve25519=account.curve25519,
            creator_ed25519=account.ed25519,
            creator_signature=signature,
            recipient=recipient,
            recipient_device=recipient_device,
            recipient_ed25519=recipient_ed25519,
        )
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        raise ValidationError("room key share field is malformed") from error


def forward_room_key(
    share: RoomKeyShare,
    key: GroupSessionKey,
    *,
    recipient: str,
    recipient_device: str,
    recipient_ed25519: str,
) -> RoomKeyShare:
    """Re-address a verified share to another device with `key` (usually an export at an index).

    The creator's signature stays valid because it covers neither the key nor the recipient.
    Raises ValidationError if a field is malformed.
    """
    fields = share.model_dump() | {
        "key_kind": key.kind,
        "session_key": key.value,
        "recipient": recipient,
        "recipient_device": recipient_device,
        "recipient_ed25519": recipient_ed25519,
    }
    try:
        return RoomKeyShare.model_validate(fields)
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        raise ValidationError("room key share field is malformed") from error


def accept_room_key(
    share: RoomKeyShare,
    *,
    olm_sender_curve25519: str,
    creator_keys: DeviceKeys,
    own_ed25519: str,
) -> InboundGroupSession:
    """Checks a share that arrived over Olm from `olm_sender_curve25519` and opens its session.

    `creator_keys` are the creator device's published, self-signed keys (from the device list); the caller
    has already checked that they belong to `share.creator` / `share.creator_device`. A SESSION key must
    come over Olm from the creator itself; an EXPORTED key may be forwarded by another device, whom the
    caller must separately trust to share history.

    Raises TamperError if any binding fails (device keys, creator signature, Olm sender, recipient,
    session id), ValidationError if the key is malformed.
    """
    verify_device_keys(creator_keys)
    if (share.creator_curve25519, share.creator_ed25519) != (creator_keys.curve25519, creator_keys.ed25519):
        raise TamperError("room key names a creator device other than the one given")
    message = _room_key_message(
        share.group_id,
        share.session_id,
        share.creator,
        share.creator_device,
        share.creator_curve25519,
        share.creator_ed25519,
    )
    try:
        public = vodozemac.Ed25519PublicKey.from_base64(share.creator_ed25519)
        public.verify_signature(message, vodozemac.Ed25519Signature.from_base64(share.creator_signature))
    except (vodozemac.KeyException, vodozemac.SignatureException, ValueError) as error:
        raise TamperError("room key creator signature does not verify") from error
    if share.recipient_ed25519 != own_ed25519:
        raise TamperError("room key was made for another device")
    match share.key_kind:
        case GroupKeyKind.SESSION:
            if olm_sender_curve25519 != share.creator_curve25519:
                raise TamperError("room key did not come from its creator device")
        case GroupKeyKind.EXPORTED:
            pass
    session = InboundGroupSession.from_key(share.key())
    if session.session_id != share.session_id:
        raise TamperError("room key does not open the session it names")
    return session


# --- rotation ------------------------------------------------------------------------------------------


class RotationReason(enum.StrEnum):
    MESSAGE_LIMIT = "message_limit"
    AGE_LIMIT = "age_limit"
    DEVICE_REMOVED = "device_removed"
    DEVICE_ADDED = "device_added"
    CLOCK_WENT_BACK = "clock_went_back"


@dataclass(frozen=True, slots=True)
class RotationPolicy:
    """When a sender must start a new outbound group session.

    A removed device always forces rotation: it holds the current key and would read every later message.
    An added device does not by default, because it receives the key at the current index and cannot read
    earlier messages; set `rotate_on_device_added` for groups that want a fresh session per membership.
    """

    max_messages: int = DEFAULT_MAX_MESSAGES
    max_age_ms: int = DEFAULT_MAX_AGE_MS
    rotate_on_device_added: bool = False

    def __post_init__(self) -> None:
        if self.max_messages < 1 or self.max_age_ms < 1:
            raise ValidationError("rotation limits must be positive")


@dataclass(frozen=True, slots=True)
class GroupSessionStats:
    """What the sender recorded about its current outbound session."""

    created_at_ms: int
    messages_sent: int
    shared_with: frozenset[str]  # opaque device identities, e.g. "user/device"


def rotation_reason(
    policy: RotationPolicy, stats: GroupSessionStats, *, now_ms: int, current_devices: frozenset[str]
) -> RotationReason | None:
    """Why the session must rotate before the next message, or None if it may be reused."""
    if stats.shared_with - current_devices:
        return RotationReason.DEVICE_REMOVED
    if policy.rotate_on_device_added and current_devices - stats.shared_with:
        return RotationReason.DEVICE_ADDED
    if stats.messages_sent >= policy.max_messages:
        return RotationReason.MESSAGE_LIMIT
    age = now_ms - stats.created_at_ms
    # A clock that runs backwards could keep a session alive forever; treat it as expired.
    if age < 0:
        return RotationReason.CLOCK_WENT_BACK
    if age >= policy.max_age_ms:
        return RotationReason.AGE_LIMIT
    return None


def should_rotate(
    policy: RotationPolicy, stats: GroupSessionStats, *, now_ms: int, current_devices: frozenset[str]
) -> bool:
    return rotation_reason(policy, stats, now_ms=now_ms, current_devices=current_devices) is not None

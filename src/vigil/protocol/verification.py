"""Out-of-band identity verification: safety numbers and interactive SAS.

Safety number (Signal's numeric fingerprint, over a set of device keys). For each user:

    material = length_prefixed("vigil-safety-number-v1", raw Ed25519 key 1, ..., key n)   keys sorted, unique
    h_0      = SHA-512(version (2 bytes) || length_prefixed(user_id) || material)
    h_i      = SHA-512(h_{i-1} || material)   for i = 1 .. 5200
    digits   = for each 5-byte chunk of h_5200[:30]: big-endian integer mod 100000, as 5 digits

giving 30 digits per user. The displayed number is the two users' 30-digit halves sorted and concatenated:
60 digits in 12 groups of 5, identical whichever side computes it. Every device's key is in the material,
so adding, removing or replacing a device changes the number. The iteration count is Signal's: it makes a
brute-force search for a colliding key set cost 5200 hashes per candidate.

SAS (Matrix's m.sas.v1 flow, with our own info strings). The responder commits to its ephemeral Curve25519
key, SHA-256(key || canonical(start)), before it sees the initiator's key, and the initiator reveals its
key before it sees the responder's; so neither side, nor a man in the middle, can grind keys until the
short strings collide. Both derive `EstablishedSas.bytes(info)` where info names both devices, both
ephemeral keys and the transaction; vodozemac turns those bytes into 7 emoji indices (6 bits each, into
the Matrix spec's 64-emoji table) and 3 decimals (13 bits each, plus 1000, so 1000..9191). After the users
confirm a match, each side MACs its own device keys (HKDF-HMAC-SHA256, vodozemac's fixed-base64 v2 MAC)
and the other side checks the MACs against the keys the server published for that device, which catches a
substituted key.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Literal

import vodozemac
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from vigil.errors import ProtocolError, TamperError, ValidationError
from vigil.protocol.encoding import canonical_json, length_prefixed
from vigil.protocol.olm import verify_device_keys
from vigil.protocol.wire import DeviceKeys

__all__ = [
    "SAS_EMOJI",
    "SafetyNumber",
    "SasAccept",
    "SasCancel",
    "SasCancelCode",
    "SasDevice",
    "SasEmoji",
    "SasEstablished",
    "SasKey",
    "SasMac",
    "SasMessage",
    "SasRole",
    "SasStart",
    "SasStarted",
    "SasVerified",
    "parse_sas_message",
    "safety_number",
]

_SAFETY_CONTEXT = b"vigil-safety-number-v1"
_SAFETY_VERSION = (0).to_bytes(2, "big")
_SAFETY_ITERATIONS = 5200
_DIGITS_PER_USER = 30
_SAS_INFO = "VIGIL_SAS_V1"
_SAS_MAC_INFO = "VIGIL_SAS_MAC_V1"
_KEY_IDS = "KEY_IDS"
_ED25519_BYTES = 32


# --- safety numbers ------------------------------------------------------------------------------------


def _raw_ed25519(key: str) -> bytes:
    if not key or "=" in key:
        raise ValidationError("Ed25519 key is not unpadded base64")
    try:
        vodozemac.Ed25519PublicKey.from_base64(key)
        raw = base64.b64decode(key + "=" * (-len(key) % 4), validate=True)
    except (vodozemac.KeyException, binascii.Error, ValueError) as error:
        raise ValidationError("Ed25519 key is malformed") from error
    if len(raw) != _ED25519_BYTES:
        raise ValidationError("Ed25519 key is malformed")
    return raw


def _user_fingerprint(user_id: str, device_ed25519_keys: Iterable[str]) -> str:
    keys = sorted({_raw_ed25519(key) for key in device_ed25519_keys})
    if not keys:
        raise ValidationError(f"user {user_id!r} has no device keys")
    material = length_prefixed(_SAFETY_CONTEXT, *keys)
    digest = hashlib.sha512(_SAFETY_VERSION + length_prefixed(user_id.encode()) + material).digest()
    for _ in range(_SAFETY_ITERATIONS):
        digest = hashlib.sha512(digest + material).digest()
    return "".join(
        f"{int.from_bytes(digest[offset : offset + 5], 'big') % 100000:05d}" for offset in range(0, 30, 5)
    )


@dataclass(frozen=True, slots=True)
class SafetyNumber:
    """60 digits that two users compare (read aloud or side by side) to detect a substituted device key."""

    digits: str

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(self.digits[i : i + 5] for i in range(0, len(self.digits), 5))

    def __str__(self) -> str:
        return " ".join(self.groups)

    def matches(self, typed: str) -> bool:
        """Whether `typed` (whitespace ignored) is this number; constant time in the digits."""
        return hmac.compare_digest("".join(typed.split()).encode(), self.digits.encode())


def safety_number(
    user_a: str, ed25519_keys_a: Iterable[str], user_b: str, ed25519_keys_b: Iterable[str]
) -> SafetyNumber:
    """The safety number of a pair of users, each given by all its devices' Ed25519 keys.

    Symmetric: swapping the two users gives the same number. Raises ValidationError if a key is malformed
    or a user has no keys.
    """
    halves = sorted((_user_fingerprint(user_a, ed25519_keys_a), _user_fingerprint(user_b, ed25519_keys_b)))
    return SafetyNumber(halves[0] + halves[1])


# --- the SAS emoji table (Matrix spec, data-definitions/sas-emoji.json) --------------------------------


@dataclass(frozen=True, slots=True)
class SasEmoji:
    number: int
    emoji: str
    description: str


_EMOJI_TABLE = (
    ("\U0001f436", "Dog"), ("\U0001f431", "Cat"), ("\U0001f981", "Lion"), ("\U0001f40e", "Horse"),
    ("\U0001f984", "Unicorn"), ("\U0001f437", "Pig"), ("\U0001f418", "Elephant"), ("\U0001f430", "Rabbit"),
    ("\U0001f43c", "Panda"), ("\U0001f413", "Rooster"), ("\U0001f427", "Penguin"), ("\U0001f422", "Turtle"),
    ("\U0001f41f", "Fish"), ("\U0001f419", "Octopus"), ("\U0001f98b", "Butterfly"), ("\U0001f337", "Flower"),
    ("\U0001f333", "Tree"), ("\U0001f335", "Cactus"), ("\U0001f344", "Mushroom"), ("\U0001f30f", "Globe"),
    ("\U0001f319", "Moon"), ("\u2601\ufe0f", "Cloud"), ("\U0001f525", "Fire"), ("\U0001f34c", "Banana"),
    ("\U0001f34e", "Apple"), ("\U0001f353", "Strawberry"), ("\U0001f33d", "Corn"), ("\U0001f355", "Pizza"),
    ("\U0001f382", "Cake"), ("\u2764\ufe0f", "Heart"), ("\U0001f600", "Smiley"), ("\U0001f916", "Robot"),
    ("\U0001f3a9", "Hat"), ("\U0001f453", "Glasses"), ("\U0001f527", "Spanner"), ("\U0001f385", "Santa"),
    ("\U0001f44d", "Thumbs Up"), ("\u2602\ufe0f", "Umbrella"), ("\u231b", "Hourglass"), ("\u23f0", "Clock"),
    ("\U0001f381", "Gift"), ("\U0001f4a1", "Light Bulb"), ("\U0001f4d5", "Book"), ("\u270f\ufe0f", "Pencil"),
    ("\U0001f4ce", "Paperclip"), ("\u2702\ufe0f", "Scissors"), ("\U0001f512", "Lock"), ("\U0001f511", "Key"),
    ("\U0001f528", "Hammer"), ("\u260e\ufe0f", "Telephone"), ("\U0001f3c1", "Flag"), ("\U0001f682", "Train"),
    ("\U0001f6b2", "Bicycle"), ("\u2708\ufe0f", "Aeroplane"), ("\U0001f680", "Rocket"),
    ("\U0001f3c6", "Trophy"),
    ("\u26bd", "Ball"), ("\U0001f3b8", "Guitar"), ("\U0001f3ba", "Trumpet"), ("\U0001f514", "Bell"),
    ("\u2693", "Anchor"), ("\U0001f3a7", "Headphones"), ("\U0001f4c1", "Folder"), ("\U0001f4cc", "Pin"),
)  # fmt: skip

SAS_EMOJI: tuple[SasEmoji, ...] = tuple(
    SasEmoji(number, emoji, description) for number, (emoji, description) in enumerate(_EMOJI_TABLE)
)


# --- SAS messages (sent to the peer inside Olm ciphertexts) --------------------------------------------

_Username = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{3,32}$")]
_DeviceId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
_TransactionId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
_B64Curve = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]{43}$")]
_B64Sha256 = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]{43}$")]
_KeyId = Annotated[str, StringConstraints(pattern=r"^(ed25519|curve25519):[A-Za-z0-9_-]{1,64}$")]


class _SasMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1
    transaction_id: _TransactionId


class SasStart(_SasMessage):
    """Initiator -> responder. `method` pins the whole suite so a downgrade is a different literal."""

    type: Literal["vigil.sas.start"] = "vigil.sas.start"
    from_user: _Username
    from_device: _DeviceId
    method: Literal["sas.v1"] = "sas.v1"  # curve25519-hkdf-sha256, hkdf-hmac-sha256.v2, emoji + decimal


class SasAccept(_SasMessage):
    """Responder -> initiator: who answers, and its commitment to the key it will reveal last."""

    type: Literal["vigil.sas.accept"] = "vigil.sas.accept"
    from_user: _Username
    from_device: _DeviceId
    commitment: _B64Sha256


class SasKey(_SasMessage):
    type: Literal["vigil.sas.key"] = "vigil.sas.key"
    key: _B64Curve


class SasMac(_SasMessage):
    """MACs of the sender's own device keys, sent once its user confirmed the emoji/decimals match."""

    type: Literal["vigil.sas.mac"] = "vigil.sas.mac"
    macs: dict[_KeyId, _B64Sha256] = Field(min_length=1, max_length=8)
    keys: _B64Sha256  # MAC of the sorted, comma-joined key ids, so a key cannot be silently dropped


class SasCancelCode(enum.StrEnum):
    USER = "user"
    MISMATCHED_SAS = "mismatched_sas"
    KEY_MISMATCH = "key_mismatch"
    COMMITMENT_MISMATCH = "commitment_mismatch"
    UNEXPECTED_MESSAGE = "unexpected_message"
    TIMEOUT = "timeout"


class SasCancel(_SasMessage):
    type: Literal["vigil.sas.cancel"] = "vigil.sas.cancel"
    code: SasCancelCode
    reason: str = Field(default="", max_length=200)


SasMessage = Annotated[SasStart | SasAccept | SasKey | SasMac | SasCancel, Field(discriminator="type")]


@cache
def _sas_message_adapter() -> TypeAdapter[SasStart | SasAccept | SasKey | SasMac | SasCancel]:
    return TypeAdapter(SasMessage)


def parse_sas_message(data: bytes | str) -> SasStart | SasAccept | SasKey | SasMac | SasCancel:
    """Raises ValidationError if `data` is not one of the SAS messages."""
    try:
        return _sas_message_adapter().validate_json(data)
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        raise ValidationError("not a SAS verification message") from error


# --- SAS stages ----------------------------------------------------------------------------------------


class SasRole(enum.StrEnum):
    INITIATOR = "initiator"
    RESPONDER = "responder"


@dataclass(frozen=True, slots=True)
class SasDevice:
    """A device taking part in a verification, with the keys it will vouch for."""

    user_id: str
    device_id: str
    keys: DeviceKeys

    def key_ids(self) -> dict[str, str]:
        return {
            f"ed25519:{self.device_id}": self.keys.ed25519,
            f"curve25519:{self.device_id}": self.keys.curve25519,
        }


@dataclass(frozen=True, slots=True)
class SasVerified:
    """The peer device's keys, proven to be the ones its user saw the same short string with."""

    user_id: str
    device_id: str
    keys: DeviceKeys


def _commitment(key: str, start: SasStart) -> str:
    digest = hashlib.sha256(key.encode() + canonical_json(start.model_dump(mode="json"))).digest()
    return base64.b64encode(digest).decode("ascii").rstrip("=")


def _curve_key(text: str) -> vodozemac.Curve25519PublicKey:
    try:
        return vodozemac.Curve25519PublicKey.from_base64(text)
    except (vodozemac.KeyException, ValueError) as error:
        raise ValidationError("SAS key is malformed") from error


class SasStarted:
    """A verification before the ephemeral keys are exchanged.

    Initiator: `initiate` -> send `start_message` -> `receive_accept` -> send the returned key ->
    `receive_key`. Responder: `respond` -> send `accept_message` -> `receive_key` -> send
    `SasEstablished.own_key_message`. Each object can be used to establish once.
    """

    __slots__ = ("_accept", "_own", "_role", "_sas", "_start")

    def __init__(self, role: SasRole, own: SasDevice, start: SasStart, accept: SasAccept | None) -> None:
        self._sas: vodozemac.Sas | None = vodozemac.Sas()
        self._role = role
        self._own = own
        self._start = start
        self._accept = accept

    @classmethod
    def initiate(cls, own: SasDevice, *, transaction_id: str) -> SasStarted:
        """Raises ValidationError if an identifier is malformed."""
        try:
            start = SasStart(transaction_id=transaction_id, from_user=own.user_id, from_device=own.device_id)
        except ValueError as error:
            raise ValidationError("SAS start field is malformed") from error
        return cls(SasRole.INITIATOR, own, start, None)

    @classmethod
    def respond(cls, own: SasDevice, start: SasStart) -> SasStarted:
        """Raises ValidationError if an identifier is malformed."""
        started = cls(SasRole.RESPONDER, own, start, None)
        try:
            started._accept = SasAccept(
                transaction_id=start.transaction_id,
                from_user=own.user_id,
                from_device=own.device_id,
                commitment=_commitment(started._public_key(), start),
            )
        except ValueError as error:
            raise ValidationError("SAS accept field is malformed") from error
        return started

    @property
    def role(self) -> SasRole:
        return self._role

    @property
    def transaction_id(self) -> str:
        return self._start.transaction_id

    @property
    def start_message(self) -> SasStart:
        return self._start

    @property
    def accept_message(self) -> SasAccept | None:
        return self._accept

    def _public_key(self) -> str:
        if self._sas is None:
            raise ProtocolError("SAS keys were already used")
        return str(self._sas.public_key.to_base64())

    def _own_key_message(self) -> SasKey:
        return SasKey(transaction_id=self.transaction_id, key=self._public_key())

    def _check_transaction(self, message: SasAccept | SasKey) -> None:
        if message.transaction_id != self.transaction_id:
            raise ProtocolError("SAS message belongs to another transaction")

    def receive_accept(self, accept: SasAccept) -> SasKey:
        """Initiator only: records the responder's commitment; returns our key to send.

        Raises ProtocolError if out of order or for another transaction.
        """
        if self._role is not SasRole.INITIATOR or self._accept is not None:
            raise ProtocolError("unexpected SAS accept")
        self._check_transaction(accept)
        self._accept = accept
        return self._own_key_message()

    def receive_key(self, key: SasKey) -> SasEstablished:
        """Derives the shared SAS secret from the peer's key.

        Raises TamperError if the responder's key does not match its commitment, ProtocolError if out of
        order, for another transaction or a reflected key, ValidationError if the key is malformed.
        """
        self._check_transaction(key)
        if self._accept is None:
            raise ProtocolError("SAS key before accept")
        own_key = self._public_key()
        if key.key == own_key:
            raise ProtocolError("peer reflected our own SAS key")
        match self._role:
            case SasRole.INITIATOR:
                if not hmac.compare_digest(
                    _commitment(key.key, self._start).encode(), self._accept.commitment.encode()
                ):
                    # Abort for good: a second try would let an attacker probe keys against the commitment.
                    self._sas = None
                    raise TamperError("SAS key does not match the responder's commitment")
                initiator_user, initiator_device, initiator_key = (
                    self._own.user_id,
                    self._own.device_id,
                    own_key,
                )
                responder_user, responder_device, responder_key = (
                    self._accept.from_user,
                    self._accept.from_device,
                    key.key,
                )
                peer_user, peer_device, own_key_message = responder_user, responder_device, None
            case SasRole.RESPONDER:
                initiator_user, initiator_device, initiator_key = (
                    self._start.from_user,
                    self._start.from_device,
                    key.key,
                )
                responder_user, responder_device, responder_key = (
                    self._own.user_id,
                    self._own.device_id,
                    own_key,
                )
                peer_user, peer_device = initiator_user, initiator_device
                own_key_message = self._own_key_message()
        peer_public = _curve_key(key.key)
        sas, self._sas = self._sas, None
        if sas is None:  # unreachable: _public_key() above raised already; narrows the type
            raise ProtocolError("SAS keys were already used")
        try:
            established = sas.diffie_hellman(peer_public)
        except (vodozemac.SasException, vodozemac.KeyException, ValueError) as error:
            raise ValidationError("SAS key is not a usable Curve25519 key") from error
        info = "|".join(
            (
                _SAS_INFO,
                initiator_user,
                initiator_device,
                initiator_key,
                responder_user,
                responder_device,
                responder_key,
                self.transaction_id,
            )
        )
        return SasEstablished(
            established,
            role=self._role,
            own=self._own,
            peer_user=peer_user,
            peer_device=peer_device,
            transaction_id=self.transaction_id,
            sas_info=info,
            own_key_message=own_key_message,
        )

    def cancel(self, code: SasCancelCode, reason: str = "") -> SasCancel:
        return SasCancel(transaction_id=self.transaction_id, code=code, reason=reason[:200])


class SasEstablished:
    """Both ephemeral keys are known: show the short strings, then exchange MACs of device keys."""

    __slots__ = ("_established", "_own", "_sas_info", "own_key_message", "peer_device", "peer_user", "role",
                 "transaction_id")  # fmt: skip

    def __init__(
        self,
        established: vodozemac.EstablishedSas,
        *,
        role: SasRole,
        own: SasDevice,
        peer_user: str,
        peer_device: str,
        transaction_id: str,
        sas_info: str,
        own_key_message: SasKey | None,
    ) -> None:
        self._established = established
        self._own = own
        self._sas_info = sas_info
        self.role = role
        self.peer_user = peer_user
        self.peer_device = peer_device
        self.transaction_id = transaction_id
        self.own_key_message = own_key_message  # the responder sends this now; None for the initiator

    def emoji(self) -> tuple[SasEmoji, ...]:
        """Seven emoji from the Matrix table; both users must see the same sequence."""
        return tuple(SAS_EMOJI[index] for index in self._established.bytes(self._sas_info).emoji_indices)

    def decimals(self) -> tuple[int, int, int]:
        """Three numbers in 1000..9191, for devices that cannot show emoji."""
        first, second, third = self._established.bytes(self._sas_info).decimals
        return int(first), int(second), int(third)

    def _mac_info(
        self, sender_user: str, sender_device: str, receiver_user: str, receiver_device: str
    ) -> str:
        return "|".join(
            (_SAS_MAC_INFO, sender_user, sender_device, receiver_user, receiver_device, self.transaction_id)
        )

    def mac_message(self) -> SasMac:
        """MACs of our own device keys. Send only after our user confirmed the short strings match."""
        info = self._mac_info(self._own.user_id, self._own.device_id, self.peer_user, self.peer_device)
        keys = self._own.key_ids()
        macs = {
            key_id: str(self._established.calculate_mac(key, f"{info}|{key_id}"))
            for key_id, key in keys.items()
        }
        key_list = ",".join(sorted(keys))
        return SasMac(
            transaction_id=self.transaction_id,
            macs=macs,
            keys=str(self._established.calculate_mac(key_list, f"{info}|{_KEY_IDS}")),
        )

    def verify_mac(self, mac: SasMac, peer_keys: DeviceKeys) -> SasVerified:
        """Checks the peer's MACs against the keys we hold for it (from the device list).

        Raises TamperError if a MAC fails (a substituted key, or a different SAS secret: a man in the
        middle), or the peer's device keys are not self-signed; ProtocolError if the MAC names other keys
        or another transaction.
        """
        if mac.transaction_id != self.transaction_id:
            raise ProtocolError("SAS MAC belongs to another transaction")
        verify_device_keys(peer_keys)
        peer = SasDevice(self.peer_user, self.peer_device, peer_keys)
        expected = peer.key_ids()
        if set(mac.macs) != set(expected):
            raise ProtocolError("SAS MAC covers other keys than the peer device's")
        info = self._mac_info(self.peer_user, self.peer_device, self._own.user_id, self._own.device_id)
        try:
            self._established.verify_mac(",".join(sorted(expected)), f"{info}|{_KEY_IDS}", mac.keys)
            for key_id, key in expected.items():
                self._established.verify_mac(key, f"{info}|{key_id}", mac.macs[key_id])
        except (vodozemac.SasException, ValueError) as error:
            raise TamperError("SAS MAC does not verify") from error
        return SasVerified(self.peer_user, self.peer_device, peer_keys)

    def cancel(self, code: SasCancelCode, reason: str = "") -> SasCancel:
        return SasCancel(transaction_id=self.transaction_id, code=code, reason=reason[:200])

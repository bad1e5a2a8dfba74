"""Safety vouchers and hash-list distribution on the wire. No I/O.

A voucher is what a client sends when an image it was about to send or show matches the signed hash list:
the image, its PDQ hash, the matched entry and the message's franking proof, encrypted to the safety team's
Curve25519 key with vodozemac's `PkEncryption` (ephemeral ECDH + AES-CBC + HMAC, libolm's "pk" scheme). The
server stores the three parts and cannot open them; the safety team opens them with `PkDecryption`.

The safety team's voucher key reaches clients signed by the hash-list authority (the key clients already pin),
so a breached server cannot swap in its own key and read vouchers: see `voucher_key_statement`.

libolm's pk scheme (which vodozemac reproduces for compatibility) computes its MAC over an empty string,
so the AES-CBC ciphertext is not authenticated: a flipped bit decrypts to garbage without an error. The
sealed plaintext is therefore `SHA-256(content) || content`, checked on opening. (Anyone holding the
public key can seal a voucher, so this is integrity, not sender authentication; the franking proof inside
is what ties a voucher to a sent message.)
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from typing import Annotated, Final, Literal

import vodozemac
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from vigil.errors import DecryptionError, TamperError, ValidationError
from vigil.protocol.encoding import b64decode, b64encode
from vigil.protocol.wire import MAX_WIRE_INT, InnerPayload

__all__ = [
    "MAX_VOUCHER_CIPHERTEXT_BYTES",
    "FrankingProof",
    "HashListAuthorityKey",
    "HashListHead",
    "ManifestBatch",
    "SealedVoucher",
    "VoucherAccepted",
    "VoucherContent",
    "VoucherDirection",
    "VoucherKeyPair",
    "VoucherMatch",
    "VoucherSubmission",
    "authority_fingerprint",
    "decode_authority_key",
    "encode_authority_key",
    "open_voucher",
    "seal_voucher",
    "verify_voucher_key",
    "voucher_key_statement",
]

MAX_VOUCHER_CIPHERTEXT_BYTES: Final = 3 * 1024 * 1024
"""Bounded by the server's JSON body limit (4 MiB by default) after base64."""
_VOUCHER_KEY_TAG: Final = b"vigil.voucher-key.v1"
_CURVE_KEY_BYTES: Final = 32
_MAC_BYTES: Final = 8  # libolm's pk scheme truncates its HMAC-SHA256 to 8 bytes

HexHash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
B64 = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]*={0,2}$")]


def encode_authority_key(key: Ed25519PublicKey) -> str:
    """The form clients pin: the raw 32-byte Ed25519 public key, base64."""
    return b64encode(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def decode_authority_key(text: str) -> Ed25519PublicKey:
    """Raises ValidationError unless `text` is a base64 raw Ed25519 public key."""
    raw = b64decode(text.strip(), field="authority key")
    if len(raw) != 32:
        raise ValidationError("the authority key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def authority_fingerprint(key: str) -> str:
    """What a person compares: the first 128 bits of SHA-256 over the raw public key, as eight groups of
    four hex digits (the same on the operator's `vigil hashlist authority-key` and every device). Raises
    ValidationError unless `key` is a base64 raw Ed25519 public key."""
    decode_authority_key(key)
    digest = hashlib.sha256(b64decode(key.strip(), field="authority key")).hexdigest()[:32]
    return " ".join(digest[i : i + 4] for i in range(0, 32, 4))


def voucher_key_statement(public_key: bytes) -> bytes:
    """The bytes the hash-list authority signs to vouch for the safety team's voucher key."""
    if len(public_key) != _CURVE_KEY_BYTES:
        raise ValidationError("a voucher key is a 32-byte Curve25519 public key")
    return _VOUCHER_KEY_TAG + public_key


def verify_voucher_key(authority_key: Ed25519PublicKey, public_key: bytes, signature: bytes) -> None:
    """Raises `TamperError` unless the pinned authority signed this voucher key."""
    try:
        authority_key.verify(signature, voucher_key_statement(public_key))
    except (InvalidSignature, ValueError) as error:
        raise TamperError("the voucher key is not signed by the hash-list authority") from error


@dataclass(frozen=True, slots=True)
class VoucherKeyPair:
    """The safety team's Curve25519 key pair. Only the safety team's machines hold `secret`."""

    secret: bytes

    @classmethod
    def generate(cls) -> VoucherKeyPair:
        return cls(vodozemac.Curve25519SecretKey().to_bytes())

    @property
    def public(self) -> bytes:
        return _decryption(self.secret).public_key.to_bytes()


def _decryption(secret: bytes) -> vodozemac.PkDecryption:
    if len(secret) != _CURVE_KEY_BYTES:
        raise ValidationError("a voucher secret key is 32 bytes")
    return vodozemac.PkDecryption.from_key(vodozemac.Curve25519SecretKey.from_bytes(secret))


@dataclass(frozen=True, slots=True)
class SealedVoucher:
    ciphertext: bytes
    mac: bytes
    ephemeral_key: bytes


def seal_voucher(public_key: bytes, plaintext: bytes) -> SealedVoucher:
    """Encrypt to the safety team's key. Raises `ValidationError` on a malformed key."""
    if len(public_key) != _CURVE_KEY_BYTES:
        raise ValidationError("a voucher key is a 32-byte Curve25519 public key")
    try:
        encryption = vodozemac.PkEncryption.from_key(vodozemac.Curve25519PublicKey.from_bytes(public_key))
    except (vodozemac.PkInvalidKeySizeException, ValueError) as error:
        raise ValidationError("invalid voucher key") from error
    message = encryption.encrypt(hashlib.sha256(plaintext).digest() + plaintext)
    return SealedVoucher(bytes(message.ciphertext), bytes(message.mac), bytes(message.ephemeral_key))


def open_voucher(secret: bytes, sealed: SealedVoucher) -> bytes:
    """Decrypt with the safety team's secret key. Raises `DecryptionError` if it does not authenticate."""
    decryption = _decryption(secret)
    try:
        message = vodozemac.Message(sealed.ciphertext, sealed.mac, sealed.ephemeral_key)
        opened = bytes(decryption.decrypt(message))
    except (vodozemac.PkDecodeException, vodozemac.PkInvalidKeySizeException, ValueError) as error:
        raise DecryptionError("the voucher does not open with this key") from error
    digest, plaintext = opened[:32], opened[32:]
    if len(opened) < 32 or not hmac.compare_digest(digest, hashlib.sha256(plaintext).digest()):
        raise DecryptionError("the voucher was altered after it was sealed")
    return plaintext


class VoucherDirection(enum.StrEnum):
    OUTGOING = "outgoing"  # this device's user tried to send the image
    INCOMING = "incoming"  # this device received it


class VoucherMatch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    bank: str = Field(min_length=1, max_length=255)
    entry_hash: HexHash
    distance: int = Field(ge=0, le=256)
    dihedral: int = Field(ge=0, le=7)


class FrankingProof(BaseModel):
    """The message the image came in (or would have gone out in) and what proves it was sent.

    For a received message the server's tag and metadata let the safety team verify the sender with the
    server's franking key; for a withheld outgoing message there is no server tag (it was never sent) and
    the sender is the device that submitted the voucher."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    payload: InnerPayload
    commitment: B64
    server_tag: B64 | None = None
    server_ts_ms: int | None = Field(default=None, ge=0, le=MAX_WIRE_INT)
    sender_device: str | None = Field(default=None, max_length=64)
    conversation: str | None = Field(default=None, max_length=80)
    """The conversation as the server saw it (the recipient for 1:1), which its tag binds."""


class VoucherContent(BaseModel):
    """The plaintext inside a voucher; only the safety team sees it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1
    direction: VoucherDirection
    image: B64
    mime: str = Field(max_length=100)
    image_sha256: B64
    pdq: HexHash
    quality: int = Field(ge=0, le=100)
    match: VoucherMatch
    list_version: int = Field(ge=1, le=MAX_WIRE_INT)
    franking: FrankingProof


class VoucherSubmission(BaseModel):
    """POST /v1/vouchers. The id is the client's, so a retried submission is stored once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    voucher_id: str
    ciphertext: B64 = Field(max_length=(MAX_VOUCHER_CIPHERTEXT_BYTES * 4) // 3 + 4)
    mac: B64 = Field(max_length=64)
    ephemeral_key: B64 = Field(max_length=64)

    @field_validator("voucher_id")
    @classmethod
    def _uuid(cls, value: str) -> str:
        try:
            return str(uuid.UUID(value))
        except ValueError as error:
            raise ValueError("voucher_id must be a UUID") from error

    def sealed(self) -> SealedVoucher:
        """Raises `ValidationError` on bad base64 or sizes."""
        mac = b64decode(self.mac, field="mac")
        ephemeral = b64decode(self.ephemeral_key, field="ephemeral_key")
        if len(mac) != _MAC_BYTES or len(ephemeral) != _CURVE_KEY_BYTES:
            raise ValidationError("voucher mac is 8 bytes and ephemeral key 32 bytes")
        ciphertext = b64decode(self.ciphertext, field="ciphertext", max_bytes=MAX_VOUCHER_CIPHERTEXT_BYTES)
        if not ciphertext or len(ciphertext) % 16:
            raise ValidationError("voucher ciphertext is whole AES blocks")
        return SealedVoucher(ciphertext, mac, ephemeral)

    @classmethod
    def of(cls, voucher_id: str, sealed: SealedVoucher) -> VoucherSubmission:
        return cls(
            voucher_id=voucher_id,
            ciphertext=b64encode(sealed.ciphertext),
            mac=b64encode(sealed.mac),
            ephemeral_key=b64encode(sealed.ephemeral_key),
        )


class VoucherAccepted(BaseModel):
    voucher_id: str


class HashListAuthorityKey(BaseModel):
    """GET /v1/hashlist/authority: the authority key this server's lists are signed with, for a client to
    pin on first use (trust on first use: the user compares `fingerprint` with the one the operator
    publishes; a key pinned from configuration needs no trust in the server)."""

    key: B64
    fingerprint: str

    @field_validator("key")
    @classmethod
    def _is_a_key(cls, value: str) -> str:
        decode_authority_key(value)
        return value


class HashListHead(BaseModel):
    """GET /v1/hashlist/head: the newest list version, its root, the transparency log head, and the
    safety team's voucher key with the authority's signature over it. Everything is null before the
    first publication."""

    version: int
    root: HexHash | None
    log_size: int
    log_head: HexHash
    voucher_key: B64 | None = None
    voucher_key_signature: B64 | None = None


class ManifestBatch(BaseModel):
    """GET /v1/hashlist/manifests?since=N: signed manifests N+1.. in order (`SignedManifest.to_bytes`,
    base64), and the head they lead to. `more` when the client should ask again."""

    manifests: list[B64]
    head: HashListHead
    more: bool = False

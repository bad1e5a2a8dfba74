"""The manifest format: listed entries, the root hash of a full list, and the canonical signed bytes.

Canonical bytes are a fixed binary layout with length prefixes and a domain tag, entries sorted and unique,
so one manifest has exactly one encoding (and `SignedManifest.from_bytes` refuses any other).
"""

from __future__ import annotations

import enum
import hashlib
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from vigil.errors import ValidationError
from vigil.safety.hashing.banks import BankName
from vigil.safety.hashing.pdq import HASH_BITS, HASH_BYTES, MATCH_DISTANCE_THRESHOLD, PdqHash

__all__ = [
    "GENESIS",
    "HashListEntry",
    "Manifest",
    "ManifestKind",
    "Sha256Digest",
    "SignedManifest",
    "canonical_order",
    "check_canonical",
    "root_hash",
]

_MANIFEST_TAG: Final = b"vigil.hashlist.manifest.v1"
_ROOT_TAG: Final = b"vigil.hashlist.root.v1"
_MAX_BANK_NAME: Final = 255


@dataclass(frozen=True, slots=True)
class Sha256Digest:
    value: bytes

    def __post_init__(self) -> None:
        if len(self.value) != 32:
            raise ValidationError("a SHA-256 digest is 32 bytes")

    @classmethod
    def of(cls, data: bytes) -> Sha256Digest:
        return cls(hashlib.sha256(data).digest())

    def hex(self) -> str:
        return self.value.hex()


GENESIS: Final = Sha256Digest(bytes(32))
"""The `previous` link of version 1."""


@dataclass(frozen=True, slots=True, order=True)
class HashListEntry:
    """One listed hash: which bank it belongs to and the distance within which it matches."""

    bank: BankName
    hash: PdqHash
    threshold: int = MATCH_DISTANCE_THRESHOLD

    def __post_init__(self) -> None:
        name = self.bank.encode()
        if not name or len(name) > _MAX_BANK_NAME:
            raise ValidationError(f"bank name must be 1..{_MAX_BANK_NAME} UTF-8 bytes")
        if not 0 <= self.threshold <= HASH_BITS:
            raise ValidationError(f"threshold must be in 0..{HASH_BITS}")

    def encode(self) -> bytes:
        name = self.bank.encode()
        return struct.pack(">B", len(name)) + name + self.hash.digest + struct.pack(">H", self.threshold)

    @property
    def key(self) -> tuple[str, bytes]:
        """A list holds a (bank, hash) pair at most once."""
        return (self.bank, self.hash.digest)


def canonical_order(entries: Iterable[HashListEntry]) -> tuple[HashListEntry, ...]:
    return tuple(sorted(entries, key=lambda e: (e.bank.encode(), e.hash.digest, e.threshold)))


def check_canonical(entries: Sequence[HashListEntry], what: str) -> None:
    keys = [e.key for e in entries]
    if len(set(keys)) != len(keys):
        raise ValidationError(f"{what}: a (bank, hash) pair appears twice")
    if tuple(entries) != canonical_order(entries):
        raise ValidationError(f"{what}: entries are not in canonical order")


def root_hash(entries: Iterable[HashListEntry]) -> Sha256Digest:
    """Commitment to a full list: SHA-256 over its canonical encoding (order-independent input)."""
    ordered = canonical_order(entries)
    check_canonical(ordered, "list")
    body = b"".join(e.encode() for e in ordered)
    return Sha256Digest.of(_ROOT_TAG + struct.pack(">Q", len(ordered)) + body)


class ManifestKind(enum.IntEnum):
    FULL = 1
    DELTA = 2


@dataclass(frozen=True, slots=True)
class Manifest:
    """One version of the list. Build with `Manifest.full`/`Manifest.delta` to get canonical order."""

    version: int
    previous: Sha256Digest
    issued_at: int
    """Seconds since the Unix epoch, supplied by the publisher (no clock is read here)."""
    kind: ManifestKind
    root: Sha256Digest
    """Root hash of the full list after applying this manifest."""
    entries: tuple[HashListEntry, ...]
    """FULL: the whole list. DELTA: the entries added since `previous`."""
    removed: tuple[HashListEntry, ...] = ()
    """DELTA only: the entries removed since `previous`."""

    def __post_init__(self) -> None:
        if not 1 <= self.version < 2**63 or not 0 <= self.issued_at < 2**63:
            raise ValidationError("version must be >= 1 and issued_at >= 0")
        if (self.version == 1) != (self.previous == GENESIS):
            raise ValidationError("only version 1 links to the genesis digest")
        if self.kind is ManifestKind.FULL and self.removed:
            raise ValidationError("a full manifest has no removed entries")
        if self.kind is ManifestKind.DELTA and self.version == 1:
            raise ValidationError("version 1 must be a full manifest")
        check_canonical(self.entries, "entries")
        check_canonical(self.removed, "removed")
        # Removing and re-adding a (bank, hash) with another threshold is how a threshold changes;
        # removing and adding the identical entry is a no-op that has no canonical place.
        if set(self.entries) & set(self.removed):
            raise ValidationError("a delta both adds and removes the same entry")

    def canonical_bytes(self) -> bytes:
        """The exact bytes the authority signs."""
        parts = [
            _MANIFEST_TAG,
            struct.pack(">QQB", self.version, self.issued_at, self.kind),
            self.previous.value,
            self.root.value,
            struct.pack(">I", len(self.entries)),
            *(e.encode() for e in self.entries),
            struct.pack(">I", len(self.removed)),
            *(e.encode() for e in self.removed),
        ]
        return b"".join(parts)

    def digest(self) -> Sha256Digest:
        return Sha256Digest.of(self.canonical_bytes())

    @classmethod
    def decode(cls, data: bytes) -> tuple[Manifest, int]:
        """Parse canonical bytes; returns the manifest and the number of bytes used.

        Raises `ValidationError` on anything but a canonical encoding.
        """
        reader = _Reader(data)
        if reader.take(len(_MANIFEST_TAG)) != _MANIFEST_TAG:
            raise ValidationError("not a Vigil hash list manifest (v1)")
        version, issued_at, kind = struct.unpack(">QQB", reader.take(17))
        previous = Sha256Digest(reader.take(32))
        root = Sha256Digest(reader.take(32))
        entries = reader.entries()
        removed = reader.entries()
        try:
            manifest_kind = ManifestKind(kind)
        except ValueError as exc:
            raise ValidationError(f"unknown manifest kind {kind}") from exc
        manifest = cls(version, previous, issued_at, manifest_kind, root, entries, removed)
        return manifest, reader.offset


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def take(self, n: int) -> bytes:
        if self.offset + n > len(self.data):
            raise ValidationError("truncated hash list manifest")
        chunk = self.data[self.offset : self.offset + n]
        self.offset += n
        return chunk

    def entries(self) -> tuple[HashListEntry, ...]:
        (count,) = struct.unpack(">I", self.take(4))
        if count > (len(self.data) - self.offset) // (1 + HASH_BYTES + 2):
            raise ValidationError("entry count exceeds the data")
        out = []
        for _ in range(count):
            (name_len,) = struct.unpack(">B", self.take(1))
            try:
                bank = BankName(self.take(name_len).decode())
            except UnicodeDecodeError as exc:
                raise ValidationError("bank name is not UTF-8") from exc
            pdq = PdqHash(self.take(HASH_BYTES))
            (threshold,) = struct.unpack(">H", self.take(2))
            out.append(HashListEntry(bank, pdq, threshold))
        return tuple(out)


@dataclass(frozen=True, slots=True)
class SignedManifest:
    manifest: Manifest
    signature: bytes

    def to_bytes(self) -> bytes:
        return self.manifest.canonical_bytes() + struct.pack(">B", len(self.signature)) + self.signature

    @classmethod
    def from_bytes(cls, data: bytes) -> SignedManifest:
        """Parse `to_bytes` output. Raises `ValidationError` if malformed (not if unsigned: see verifier)."""
        manifest, used = Manifest.decode(data)
        reader = _Reader(data)
        reader.offset = used
        (sig_len,) = struct.unpack(">B", reader.take(1))
        signature = reader.take(sig_len)
        if reader.offset != len(data):
            raise ValidationError("trailing bytes after the signature")
        return cls(manifest, signature)

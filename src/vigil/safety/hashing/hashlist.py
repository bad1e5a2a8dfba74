"""Signed, versioned, transparent hash lists.

The safety authority publishes the list of known-image hashes as a chain of manifests. Each manifest has a
version (1, 2, ...), the SHA-256 digest of the previous manifest, an issue time, either the full list or a
delta (added/removed entries), and the root hash of the full list after it is applied; the authority signs
its canonical bytes with Ed25519. Every manifest is appended to a hash-chained log whose head hash is
published: since each client checks its list against the same log, the server cannot hand one user a
targeted list (say, one hash of a dissident's photo) without forking the log, which anyone comparing heads
would see.

Clients run `HashListVerifier`, which pins the authority's public key and refuses, with distinct errors,
anything unsigned, tampered, rolled back, forked, skipped, inconsistent or (optionally) stale. It updates its
state only after every check passed.

Canonical bytes are a fixed binary layout with length prefixes and a domain tag, entries sorted and unique,
so one manifest has exactly one encoding (and `SignedManifest.from_bytes` refuses any other).
"""

from __future__ import annotations

import enum
import hashlib
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from vigil.errors import ProtocolError, TamperError, ValidationError
from vigil.safety.hashing.banks import Bank, BankEntry, BankKind, BankName, EntryId
from vigil.safety.hashing.pdq import HASH_BITS, HASH_BYTES, MATCH_DISTANCE_THRESHOLD, PdqHash

__all__ = [
    "ForkError",
    "HashListAuthority",
    "HashListEntry",
    "HashListPublisher",
    "HashListState",
    "HashListVerifier",
    "InconsistentDeltaError",
    "LogHead",
    "Manifest",
    "ManifestKind",
    "NotInLogError",
    "RollbackError",
    "RootMismatchError",
    "Sha256Digest",
    "SignatureError",
    "SignedManifest",
    "StaleListError",
    "TransparencyLog",
    "UnsignedListError",
    "VersionGapError",
    "check_client_list",
    "root_hash",
]

_MANIFEST_TAG: Final = b"vigil.hashlist.manifest.v1"
_ROOT_TAG: Final = b"vigil.hashlist.root.v1"
_LOG_TAG: Final = b"vigil.hashlist.log.v1"
_SIGNATURE_BYTES: Final = 64
_MAX_BANK_NAME: Final = 255


class UnsignedListError(TamperError):
    """The manifest carries no signature."""

    code = "hashlist_unsigned"


class SignatureError(TamperError):
    """The signature does not verify under the pinned authority key (tampered, or another signer)."""

    code = "hashlist_bad_signature"


class RootMismatchError(TamperError):
    """The signed root hash does not match the list obtained by applying the manifest."""

    code = "hashlist_root_mismatch"


class NotInLogError(TamperError):
    """A list (version, root) or a log head does not match the published transparency log."""

    code = "hashlist_not_in_log"


class RollbackError(ProtocolError):
    """The manifest's version (or issue time) is not newer than the one already held."""

    code = "hashlist_rollback"


class ForkError(ProtocolError):
    """The manifest does not extend the held chain: same version with other content, or a wrong link."""

    code = "hashlist_fork"


class VersionGapError(ProtocolError):
    """The manifest skips versions (or is a delta with no base): fetch the missing ones first."""

    code = "hashlist_version_gap"


class InconsistentDeltaError(ProtocolError):
    """A delta removes an entry that is absent or adds one that is already present."""

    code = "hashlist_inconsistent_delta"


class StaleListError(ProtocolError):
    """The newest manifest is older than the verifier's maximum age: the list may be frozen."""

    code = "hashlist_stale"


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


def _canonical_order(entries: Iterable[HashListEntry]) -> tuple[HashListEntry, ...]:
    return tuple(sorted(entries, key=lambda e: (e.bank.encode(), e.hash.digest, e.threshold)))


def _check_canonical(entries: Sequence[HashListEntry], what: str) -> None:
    keys = [e.key for e in entries]
    if len(set(keys)) != len(keys):
        raise ValidationError(f"{what}: a (bank, hash) pair appears twice")
    if tuple(entries) != _canonical_order(entries):
        raise ValidationError(f"{what}: entries are not in canonical order")


def root_hash(entries: Iterable[HashListEntry]) -> Sha256Digest:
    """Commitment to a full list: SHA-256 over its canonical encoding (order-independent input)."""
    ordered = _canonical_order(entries)
    _check_canonical(ordered, "list")
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
        _check_canonical(self.entries, "entries")
        _check_canonical(self.removed, "removed")
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


def _verify_signature(public_key: Ed25519PublicKey, signed: SignedManifest) -> None:
    if not signed.signature:
        raise UnsignedListError(f"hash list version {signed.manifest.version} is unsigned")
    if len(signed.signature) != _SIGNATURE_BYTES:
        raise SignatureError("an Ed25519 signature is 64 bytes")
    try:
        public_key.verify(signed.signature, signed.manifest.canonical_bytes())
    except InvalidSignature as exc:
        raise SignatureError(f"hash list version {signed.manifest.version}: bad signature") from exc


class HashListAuthority:
    """The safety authority's signing side. The private key never leaves this object."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._key.public_key()

    def sign(self, manifest: Manifest) -> SignedManifest:
        return SignedManifest(manifest, self._key.sign(manifest.canonical_bytes()))


@dataclass(frozen=True, slots=True)
class HashListState:
    """A verified list: what a client holds after applying manifests."""

    version: int
    digest: Sha256Digest
    """Digest of the last applied manifest (the next one must link to it)."""
    issued_at: int
    root: Sha256Digest
    entries: frozenset[HashListEntry] = field(repr=False)

    def to_banks(self, kinds: Mapping[BankName, BankKind] | None = None) -> list[Bank]:
        """One `Bank` per bank name, entries keeping their own thresholds; NORMAL unless `kinds` says."""
        grouped: dict[BankName, list[BankEntry]] = {}
        for e in _canonical_order(self.entries):
            grouped.setdefault(e.bank, []).append(
                BankEntry(EntryId(e.hash.hex()), e.hash, threshold=e.threshold)
            )
        kinds = kinds or {}
        return [Bank(name, kinds.get(name, BankKind.NORMAL), tuple(items)) for name, items in grouped.items()]


def _next_state(
    state: HashListState | None, signed: SignedManifest, public_key: Ed25519PublicKey
) -> HashListState:
    """Every check of one step; pure, so callers can swap state in only on success."""
    _verify_signature(public_key, signed)
    m = signed.manifest
    digest = m.digest()
    if state is None:
        if m.kind is not ManifestKind.FULL:
            raise VersionGapError(f"version {m.version} is a delta and there is no base list")
        base: frozenset[HashListEntry] = frozenset()
    else:
        if m.version < state.version or (m.version == state.version and digest == state.digest):
            raise RollbackError(f"version {m.version} is not newer than the held version {state.version}")
        if m.version == state.version:
            raise ForkError(f"two different manifests claim version {m.version}")
        if m.version > state.version + 1:
            raise VersionGapError(f"version {m.version} skips from {state.version}")
        if m.previous != state.digest:
            raise ForkError(f"version {m.version} does not link to the held version {state.version}")
        if m.issued_at < state.issued_at:
            raise RollbackError(f"version {m.version} is issued before version {state.version}")
        base = state.entries
    if m.kind is ManifestKind.FULL:
        entries = frozenset(m.entries)
    else:
        held = {e.key: e for e in base}
        for e in m.removed:
            if held.get(e.key) != e:
                raise InconsistentDeltaError(
                    f"version {m.version} removes an entry not held: {e.bank}/{e.hash}"
                )
        for e in m.removed:
            del held[e.key]
        for e in m.entries:
            if e.key in held:
                raise InconsistentDeltaError(
                    f"version {m.version} adds an entry already held: {e.bank}/{e.hash}"
                )
        entries = (base - frozenset(m.removed)) | frozenset(m.entries)
    if root_hash(entries) != m.root:
        raise RootMismatchError(f"version {m.version}: the list does not hash to the signed root")
    return HashListState(m.version, digest, m.issued_at, m.root, entries)


class HashListVerifier:
    """Client side: pins the authority key and accepts only valid successors of what it holds.

    `max_age_seconds` with `now` (the caller's clock) refuses a newest list older than that, which
    catches a server that keeps serving an old but validly signed list.
    """

    def __init__(
        self,
        authority_key: Ed25519PublicKey,
        *,
        state: HashListState | None = None,
        max_age_seconds: int | None = None,
    ) -> None:
        self._key = authority_key
        self._state = state
        self._max_age = max_age_seconds

    @property
    def state(self) -> HashListState | None:
        return self._state

    def apply(self, signed: SignedManifest, *, now: int | None = None) -> HashListState:
        """Verify and apply the next manifest.

        Raises `UnsignedListError`, `SignatureError`, `RollbackError`, `ForkError`, `VersionGapError`,
        `InconsistentDeltaError`, `RootMismatchError` or `StaleListError`; on any error the held state
        is unchanged.
        """
        new_state = _next_state(self._state, signed, self._key)
        if self._max_age is not None and now is not None and now - new_state.issued_at > self._max_age:
            raise StaleListError(f"version {new_state.version} is {now - new_state.issued_at}s old")
        self._state = new_state
        return new_state

    def apply_all(
        self, manifests: Iterable[SignedManifest], *, now: int | None = None
    ) -> HashListState | None:
        """Apply manifests in order, skipping those already held (so a client can replay a log suffix)."""
        for signed in manifests:
            if self._state is not None and signed.manifest.version <= self._state.version:
                continue
            self.apply(signed, now=now)
        return self._state


@dataclass(frozen=True, slots=True)
class LogHead:
    """What gets published: the log's size and the hash chaining every manifest digest so far."""

    size: int
    hash: Sha256Digest


_EMPTY_LOG: Final = Sha256Digest.of(_LOG_TAG)


def _chain(head: Sha256Digest, manifest_digest: Sha256Digest) -> Sha256Digest:
    return Sha256Digest.of(_LOG_TAG + head.value + manifest_digest.value)


class TransparencyLog:
    """Append-only log of every signed manifest; each append is verified like a client would."""

    def __init__(self, authority_key: Ed25519PublicKey) -> None:
        self._key = authority_key
        self._records: list[SignedManifest] = []
        self._roots: list[Sha256Digest] = []
        self._heads: list[Sha256Digest] = [_EMPTY_LOG]
        self._state: HashListState | None = None

    @classmethod
    def replay(cls, authority_key: Ed25519PublicKey, records: Iterable[SignedManifest]) -> TransparencyLog:
        """Rebuild (and thereby fully verify) a log from its records, as an auditor would."""
        log = cls(authority_key)
        for signed in records:
            log.append(signed)
        return log

    def append(self, signed: SignedManifest) -> LogHead:
        """Append the next manifest. Raises whatever `HashListVerifier.apply` raises, and `VersionGapError`
        unless the log starts at version 1 (the log must hold the whole history)."""
        if self._state is None and signed.manifest.version != 1:
            raise VersionGapError("a log starts at version 1")
        self._state = _next_state(self._state, signed, self._key)
        self._records.append(signed)
        self._roots.append(self._state.root)
        self._heads.append(_chain(self._heads[-1], self._state.digest))
        return self.head()

    def head(self) -> LogHead:
        return LogHead(len(self._records), self._heads[-1])

    def head_at(self, size: int) -> LogHead:
        if not 0 <= size <= len(self._records):
            raise NotInLogError(f"the log has {len(self._records)} versions, not {size}")
        return LogHead(size, self._heads[size])

    def root_at(self, version: int) -> Sha256Digest:
        if not 1 <= version <= len(self._roots):
            raise NotInLogError(f"version {version} is not in the log (size {len(self._roots)})")
        return self._roots[version - 1]

    @property
    def records(self) -> tuple[SignedManifest, ...]:
        return tuple(self._records)

    @property
    def state(self) -> HashListState | None:
        return self._state


def check_client_list(
    authority_key: Ed25519PublicKey,
    records: Iterable[SignedManifest],
    *,
    version: int,
    root: Sha256Digest,
    published_head: LogHead | None = None,
) -> LogHead:
    """Check a client's list (its version and root hash) against the transparency log.

    Replays and verifies the whole log, checks that the log's root at `version` is `root` and, if given,
    that the replayed log's head equals the published one (so the log shown to this client is the log
    shown to everyone). Returns the replayed head. Raises `NotInLogError` on a mismatch, or any error of
    `TransparencyLog.append` if the log itself is invalid.
    """
    log = TransparencyLog.replay(authority_key, records)
    if published_head is not None and log.head_at(published_head.size) != published_head:
        raise NotInLogError("the log does not match the published head")
    if log.root_at(version) != root:
        raise NotInLogError(f"the client's list differs from the log's version {version}")
    return log.head()


class HashListPublisher:
    """The authority's publishing side: turns successive full lists into signed manifests and logs them."""

    def __init__(self, authority: HashListAuthority) -> None:
        self._authority = authority
        self.log = TransparencyLog(authority.public_key)

    def publish(
        self, entries: Iterable[HashListEntry], *, issued_at: int, full: bool = False
    ) -> SignedManifest:
        """Publish `entries` as the next version: a delta from the previous one unless `full` (or first).

        Raises `ValidationError` on duplicate (bank, hash) pairs, `RollbackError` if `issued_at` goes back.
        """
        wanted = _canonical_order(entries)
        _check_canonical(wanted, "list")
        state = self.log.state
        root = root_hash(wanted)
        if state is None or full:
            version = 1 if state is None else state.version + 1
            previous = GENESIS if state is None else state.digest
            manifest = Manifest(version, previous, issued_at, ManifestKind.FULL, root, wanted)
        else:
            new = frozenset(wanted)
            added = _canonical_order(new - state.entries)
            removed = _canonical_order(state.entries - new)
            manifest = Manifest(
                state.version + 1, state.digest, issued_at, ManifestKind.DELTA, root, added, removed
            )
        signed = self._authority.sign(manifest)
        self.log.append(signed)
        return signed

"""The client side of a hash list: each manifest is checked against the pinned authority key and the
held chain before it replaces the held list.

`HashListVerifier` refuses, with distinct errors, anything unsigned, tampered, rolled back, forked,
skipped, inconsistent or (optionally) stale. It updates its state only after every check passed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from vigil.safety.hashing.banks import Bank, BankEntry, BankKind, BankName, EntryId
from vigil.safety.hashing.hashlist.errors import (
    ForkError,
    InconsistentDeltaError,
    RollbackError,
    RootMismatchError,
    SignatureError,
    StaleListError,
    UnsignedListError,
    VersionGapError,
)
from vigil.safety.hashing.hashlist.manifest import (
    HashListEntry,
    ManifestKind,
    Sha256Digest,
    SignedManifest,
    canonical_order,
    root_hash,
)

__all__ = ["HashListState", "HashListVerifier", "next_state"]

_SIGNATURE_BYTES: Final = 64


def _verify_signature(public_key: Ed25519PublicKey, signed: SignedManifest) -> None:
    if not signed.signature:
        raise UnsignedListError(f"hash list version {signed.manifest.version} is unsigned")
    if len(signed.signature) != _SIGNATURE_BYTES:
        raise SignatureError("an Ed25519 signature is 64 bytes")
    try:
        public_key.verify(signed.signature, signed.manifest.canonical_bytes())
    except InvalidSignature as exc:
        raise SignatureError(f"hash list version {signed.manifest.version}: bad signature") from exc


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
        for e in canonical_order(self.entries):
            grouped.setdefault(e.bank, []).append(
                BankEntry(EntryId(e.hash.hex()), e.hash, threshold=e.threshold)
            )
        kinds = kinds or {}
        return [Bank(name, kinds.get(name, BankKind.NORMAL), tuple(items)) for name, items in grouped.items()]


def next_state(
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
        new_state = next_state(self._state, signed, self._key)
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

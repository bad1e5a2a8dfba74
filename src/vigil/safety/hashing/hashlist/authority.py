"""The safety authority's side: signing manifests, and publishing successive lists into the log."""

from __future__ import annotations

from collections.abc import Iterable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from vigil.safety.hashing.hashlist.log import TransparencyLog
from vigil.safety.hashing.hashlist.manifest import (
    GENESIS,
    HashListEntry,
    Manifest,
    ManifestKind,
    SignedManifest,
    canonical_order,
    check_canonical,
    root_hash,
)

__all__ = ["HashListAuthority", "HashListPublisher"]


class HashListAuthority:
    """The safety authority's signing side. The private key never leaves this object."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._key.public_key()

    def sign(self, manifest: Manifest) -> SignedManifest:
        return SignedManifest(manifest, self._key.sign(manifest.canonical_bytes()))


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
        wanted = canonical_order(entries)
        check_canonical(wanted, "list")
        state = self.log.state
        root = root_hash(wanted)
        if state is None or full:
            version = 1 if state is None else state.version + 1
            previous = GENESIS if state is None else state.digest
            manifest = Manifest(version, previous, issued_at, ManifestKind.FULL, root, wanted)
        else:
            new = frozenset(wanted)
            added = canonical_order(new - state.entries)
            removed = canonical_order(state.entries - new)
            manifest = Manifest(
                state.version + 1, state.digest, issued_at, ManifestKind.DELTA, root, added, removed
            )
        signed = self._authority.sign(manifest)
        self.log.append(signed)
        return signed

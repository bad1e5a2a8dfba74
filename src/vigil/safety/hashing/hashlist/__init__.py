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

Modules: `manifest` (entries, root hash, canonical signed bytes), `verifier` (the client's checks),
`log` (the transparency log and its head chain), `authority` (signing and publishing), `errors`.
"""

from vigil.safety.hashing.hashlist.authority import HashListAuthority, HashListPublisher
from vigil.safety.hashing.hashlist.errors import (
    ForkError,
    InconsistentDeltaError,
    NotInLogError,
    RollbackError,
    RootMismatchError,
    SignatureError,
    StaleListError,
    UnsignedListError,
    VersionGapError,
)
from vigil.safety.hashing.hashlist.log import (
    EMPTY_LOG_HEAD,
    LogHead,
    TransparencyLog,
    chain_log_head,
    check_client_list,
)
from vigil.safety.hashing.hashlist.manifest import (
    GENESIS,
    HashListEntry,
    Manifest,
    ManifestKind,
    Sha256Digest,
    SignedManifest,
    root_hash,
)
from vigil.safety.hashing.hashlist.verifier import HashListState, HashListVerifier

__all__ = [
    "EMPTY_LOG_HEAD",
    "GENESIS",
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
    "chain_log_head",
    "check_client_list",
    "root_hash",
]

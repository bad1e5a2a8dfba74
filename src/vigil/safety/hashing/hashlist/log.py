"""The transparency log: every signed manifest, hash-chained, with a published head.

Since each client checks its list against the same log, the server cannot hand one user a targeted list
(say, one hash of a dissident's photo) without forking the log, which anyone comparing heads would see.
`EMPTY_LOG_HEAD` and `chain_log_head` are the chain itself, for a client that keeps only the head.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from vigil.safety.hashing.hashlist.errors import NotInLogError, VersionGapError
from vigil.safety.hashing.hashlist.manifest import Sha256Digest, SignedManifest
from vigil.safety.hashing.hashlist.verifier import HashListState, next_state

__all__ = [
    "EMPTY_LOG_HEAD",
    "LogHead",
    "TransparencyLog",
    "chain_log_head",
    "check_client_list",
]

_LOG_TAG: Final = b"vigil.hashlist.log.v1"


@dataclass(frozen=True, slots=True)
class LogHead:
    """What gets published: the log's size and the hash chaining every manifest digest so far."""

    size: int
    hash: Sha256Digest


EMPTY_LOG_HEAD: Final = Sha256Digest.of(_LOG_TAG)
"""The head hash of a log with no manifests."""


def chain_log_head(head: Sha256Digest, manifest_digest: Sha256Digest) -> Sha256Digest:
    """The log's head hash after appending the manifest with `manifest_digest` to a log at `head`."""
    return Sha256Digest.of(_LOG_TAG + head.value + manifest_digest.value)


class TransparencyLog:
    """Append-only log of every signed manifest; each append is verified like a client would."""

    def __init__(self, authority_key: Ed25519PublicKey) -> None:
        self._key = authority_key
        self._records: list[SignedManifest] = []
        self._roots: list[Sha256Digest] = []
        self._heads: list[Sha256Digest] = [EMPTY_LOG_HEAD]
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
        self._state = next_state(self._state, signed, self._key)
        self._records.append(signed)
        self._roots.append(self._state.root)
        self._heads.append(chain_log_head(self._heads[-1], self._state.digest))
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

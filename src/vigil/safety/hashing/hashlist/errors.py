"""Why a hash list manifest is refused: each failed check has its own error (and stable code)."""

from __future__ import annotations

from vigil.errors import ProtocolError, TamperError

__all__ = [
    "ForkError",
    "InconsistentDeltaError",
    "NotInLogError",
    "RollbackError",
    "RootMismatchError",
    "SignatureError",
    "StaleListError",
    "UnsignedListError",
    "VersionGapError",
]


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

"""The one exception root of Vigil. Every package raises subclasses of `VigilError`."""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "ConflictError",
    "DecryptionError",
    "GoneError",
    "NotFoundError",
    "PermissionDenied",
    "PolicyViolation",
    "ProtocolError",
    "StorageError",
    "TamperError",
    "ValidationError",
    "VigilError",
]


class VigilError(Exception):
    """Root of every error Vigil raises on purpose. `code` is the stable machine-readable name."""

    code = "vigil_error"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.code)
        self.detail = detail or self.code


class ValidationError(VigilError, ValueError):
    """Input is malformed: bad base64, wrong length, unknown kind, out-of-range value. A ValueError too,
    so that pydantic validators raising it report a field error."""

    code = "invalid_request"


class ProtocolError(VigilError):
    """A peer or the server broke the protocol (unexpected message shape or sequence)."""

    code = "protocol_error"


class TamperError(ProtocolError):
    """A MAC, signature, commitment or content hash did not verify."""

    code = "tampered"


class DecryptionError(ProtocolError):
    """A ciphertext could not be decrypted; session state is unchanged."""

    code = "decryption_failed"


class AuthenticationError(VigilError):
    """Missing or wrong credentials."""

    code = "unauthenticated"


class PermissionDenied(VigilError):
    """Authenticated, but not allowed to do this."""

    code = "forbidden"


class PolicyViolation(PermissionDenied):
    """Refused by a safety policy (block, restriction, suspension, minor protection)."""

    code = "policy_violation"


class NotFoundError(VigilError):
    """The named user, device, message or blob does not exist (or is not visible to the caller)."""

    code = "not_found"


class GoneError(NotFoundError):
    """The named thing existed and was withdrawn for good (a revoked group invite link)."""

    code = "gone"


class ConflictError(VigilError):
    """The request conflicts with current state (taken username, stale device list, reused id)."""

    code = "conflict"


class StorageError(VigilError):
    """Local or server storage failed or holds something unreadable (wrong passphrase, corrupt row)."""

    code = "storage_error"

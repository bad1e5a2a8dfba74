"""Refusals that are about the server's capacity, not the request's shape: too many requests (429), a
body over the size limit (413), a dependency that is down (503), no room left for blobs (507). Each
says when to come back where that is known, and `dependency_unreachable` is the one place that
decides whether a database error means "down".
"""

from __future__ import annotations

import sqlite3

from sqlalchemy import exc as sa_exc

from vigil.errors import VigilError

__all__ = [
    "DEPENDENCY_RETRY_AFTER_S",
    "InsufficientStorage",
    "PayloadTooLarge",
    "RateLimited",
    "Unavailable",
    "dependency_unreachable",
]

# What a 503 tells clients: long enough not to hammer a database that is restarting, short enough that
# clients come back soon after it does.
DEPENDENCY_RETRY_AFTER_S = 5

# PostgreSQL SQLSTATEs that mean "the database is not there right now", not "the statement is wrong":
# connection exceptions (08), operator intervention such as a shutdown or pg_terminate_backend (57P),
# insufficient resources such as too many connections (53), and a database that was dropped (3D000).
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "57P", "53")
_UNAVAILABLE_SQLSTATES = frozenset({"3D000"})
# SQLite: busy/locked past the busy timeout, the file cannot be opened, I/O error, disk full.
_UNAVAILABLE_SQLITE_CODES = frozenset({5, 6, 10, 13, 14})


class RateLimited(VigilError):
    """A rate limit was reached; `retry_after_s` says when the next request can pass."""

    code = "rate_limited"

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = max(1, retry_after_s)


class Unavailable(VigilError):
    """A dependency the request needs (the database) is unreachable; nothing was done."""

    code = "unavailable"

    def __init__(self, detail: str, retry_after_s: int = DEPENDENCY_RETRY_AFTER_S) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class PayloadTooLarge(VigilError):
    """The body is larger than the server accepts for this kind of request."""

    code = "too_large"


class InsufficientStorage(VigilError):
    """No room for the blob: the account's quota of unfetched blobs or the disk reserve is used up."""

    code = "insufficient_storage"


def dependency_unreachable(error: BaseException) -> bool:
    """True when `error` means the database could not be reached (refused, reset, timed out, shut down,
    dropped), as opposed to a bug or a bad statement."""
    if isinstance(error, ConnectionError | TimeoutError | sa_exc.TimeoutError | sa_exc.DisconnectionError):
        return True
    if not isinstance(error, sa_exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    orig = error.orig
    if isinstance(orig, sqlite3.OperationalError):
        return (orig.sqlite_errorcode & 0xFF) in _UNAVAILABLE_SQLITE_CODES  # primary code of an extended one
    sqlstate = str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or "")
    if sqlstate in _UNAVAILABLE_SQLSTATES or sqlstate.startswith(_UNAVAILABLE_SQLSTATE_CLASSES):
        return True
    cause = orig.__cause__ if orig is not None else None
    return isinstance(cause, ConnectionError | TimeoutError)

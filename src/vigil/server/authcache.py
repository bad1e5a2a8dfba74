"""In-process cache of authenticated devices, so a request does not query the database to learn who
sent it (a query per request was ~8% of the relay's server CPU).

What is cached is the outcome of a successful check: the device's credential digest and who it is.
A refused credential and a suspended account are never cached (they are looked up every time), so
lifting a suspension needs no invalidation. What must invalidate, at once:
- a suspension (`invalidate_users`), a device removed or its credential changed (`invalidate_devices`):
  the code that commits the change calls `ServerContext.credentials_changed`, which empties the entries
  here and, through the delivery hub's Redis channel, in every other worker and node;
- losing Redis: a worker that was not listening may have missed an invalidation, so the whole cache is
  emptied when its listener reconnects (`clear`);
- a process on the same machine without Redis (the standalone console, a command on the same data
  directory): `announce` replaces a marker file in the data directory, and every lookup compares the
  marker's identity (one `stat`, about a microsecond) with the one it last saw, emptying the cache when
  it changed.

A fill races with an invalidation: a request that read the old row before the change committed must not
store it after the invalidation ran. Every invalidation bumps a generation; a fill stores only if the
generation it started under is still current. `ttl_s` bounds what a writer that neither shares Redis
nor the data directory can leave stale.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

__all__ = ["AuthCache"]

Identity = TypeVar("Identity")


@dataclass(frozen=True, slots=True)
class _Entry(Generic[Identity]):
    digest: bytes
    user_id: int
    identity: Identity
    expires_at: float


class AuthCache(Generic[Identity]):
    def __init__(
        self,
        ttl_s: float,
        *,
        marker: Path | None = None,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._marker = marker
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, _Entry[Identity]] = {}
        self._generation = 0
        self._seen_marker = self._marker_identity()

    @property
    def generation(self) -> int:
        """Read before looking a device up; hand it back to `store`."""
        return self._generation

    def _marker_identity(self) -> tuple[int, int, int] | None:
        if self._marker is None:
            return None
        try:
            found = os.stat(self._marker)
        except OSError:
            return None
        return (found.st_ino, found.st_mtime_ns, found.st_size)

    def _check_marker(self) -> None:
        if self._marker is None:
            return
        identity = self._marker_identity()
        if identity != self._seen_marker:
            self._seen_marker = identity
            self.clear()

    def announce(self) -> None:
        """Tells processes sharing the marker (the data directory) that credentials changed: a new file
        replaces the marker, so its identity changes even within one clock tick."""
        if self._marker is None:
            return
        temporary = self._marker.with_name(f"{self._marker.name}.{os.getpid()}.tmp")
        temporary.write_text(f"{time.time_ns()}\n")
        os.replace(temporary, self._marker)

    def lookup(self, device_id: str, digest: bytes) -> Identity | None:
        """The cached identity when `digest` matches the device's cached credential digest (compared in
        constant time) and the entry is fresh; None means "ask the database"."""
        if self._ttl_s <= 0:
            return None
        self._check_marker()
        entry = self._entries.get(device_id)
        if entry is None:
            return None
        if entry.expires_at <= self._clock():
            del self._entries[device_id]
            return None
        if not hmac.compare_digest(entry.digest, digest):
            return None
        return entry.identity

    def store(self, generation: int, device_id: str, digest: bytes, user_id: int, identity: Identity) -> None:
        if self._ttl_s <= 0:
            return
        self._check_marker()
        if generation != self._generation:
            return  # an invalidation ran while this lookup read the database
        if len(self._entries) >= self._max_entries:
            self._entries.clear()  # crude but bounded; refills cost one query per device
        self._entries[device_id] = _Entry(digest, user_id, identity, self._clock() + self._ttl_s)

    def invalidate_devices(self, device_ids: Iterable[str]) -> None:
        self._generation += 1
        for device_id in device_ids:
            self._entries.pop(device_id, None)

    def invalidate_users(self, user_ids: Iterable[int]) -> None:
        self._generation += 1
        users = set(user_ids)
        if users:
            self._entries = {k: e for k, e in self._entries.items() if e.user_id not in users}

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()

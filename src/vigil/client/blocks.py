"""This account's block list on the device: group messages from a blocked member are not handed to the
app (the server stops a blocked account's direct messages; in a shared group it cannot, since the
group's ciphertext is one for every member).

The list is sealed in the device store, updated by every block and unblock made here, and replaced by
the server's list once per session (the first time a group message arrives), so blocks made on the
account's other devices apply too. Messages hidden while a sender was blocked stay hidden after an
unblock: they were acknowledged and never stored, so there is nothing to resurrect (the sender's later
messages are shown again).
"""

from __future__ import annotations

import json
import logging

import httpx

from vigil.client.device import DeviceCore
from vigil.errors import VigilError

__all__ = ["BlockedSenders"]

log = logging.getLogger(__name__)

_SECRET_BLOCKED = "blocked_users"  # noqa: S105 - a store entry name, not a secret


class BlockedSenders:
    def __init__(self, core: DeviceCore) -> None:
        self._core = core
        stored = core.store.get_secret(_SECRET_BLOCKED)
        self._blocked: set[str] = set(json.loads(stored)) if stored else set()
        self._refreshed = False

    def __contains__(self, username: object) -> bool:
        return username in self._blocked

    def add(self, username: str) -> None:
        self._replace(self._blocked | {username})

    def remove(self, username: str) -> None:
        self._replace(self._blocked - {username})

    async def hides(self, sender: str) -> bool:
        """Whether a group message from `sender` is kept from the app. The first call of a session
        takes the server's list (a failed fetch keeps the stored one)."""
        if not self._refreshed:
            self._refreshed = True
            try:
                self._replace(set((await self._core.transport.blocks()).blocked))
            except (httpx.TransportError, VigilError) as error:
                log.warning("block list refresh failed, using the stored one: %s", type(error).__name__)
        return sender in self._blocked

    def _replace(self, blocked: set[str]) -> None:
        if blocked == self._blocked and self._core.store.get_secret(_SECRET_BLOCKED) is not None:
            return
        with self._core.store.transaction():
            self._core.store.set_secret(_SECRET_BLOCKED, json.dumps(sorted(blocked)))
        self._blocked = blocked

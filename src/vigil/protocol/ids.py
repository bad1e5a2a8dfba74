"""Domain identifiers shared by every layer.

They are `NewType`s over `str`: free at run time, but mypy keeps a username from being passed
where a device id or a group id is expected once a value crosses a layer boundary.
"""

from __future__ import annotations

from typing import NewType

__all__ = ["BlobId", "CaseId", "DeviceId", "GroupId", "MessageId", "UserId"]

UserId = NewType("UserId", str)
"""An account's username: the name people address each other by."""

DeviceId = NewType("DeviceId", str)
"""A device of one account, chosen by the server at registration."""

GroupId = NewType("GroupId", str)
"""A group conversation (32 hex characters)."""

MessageId = NewType("MessageId", str)
"""A message's client-chosen UUID, the key that makes sends idempotent."""

BlobId = NewType("BlobId", str)
"""An uploaded (encrypted) attachment."""

CaseId = NewType("CaseId", int)
"""A review case: the number reviewers see in the console and pass to `vigil cybertip submit`."""

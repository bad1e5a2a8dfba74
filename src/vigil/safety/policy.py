"""Age-aware contact rules: who may message or add whom, decided from facts the server already holds.

Pure: the server's enforcement service loads the facts (standing, blocks, connections, age bands) and
asks these functions; nothing here touches a database.
"""

from __future__ import annotations

import enum

__all__ = ["NOT_CONNECTED_REFUSAL", "Standing", "decide_group_add", "decide_send"]

# Minors' protective default: direct messages only from accounts they are connected to.
NOT_CONNECTED_REFUSAL = (
    "the recipient is a minor who is not connected to this account; "
    "send a contact request first (POST /v1/contacts/requests)"
)


class Standing(enum.StrEnum):
    ACTIVE = "active"
    RESTRICTED = "restricted"  # no new conversations, no contact with minors
    SUSPENDED = "suspended"  # no sending, no signing in


def decide_send(
    standing: Standing,
    *,
    blocked_by_recipient: bool,
    recipient_is_minor: bool,
    existing_conversation: bool,
    connected: bool = True,
) -> str | None:
    """Why a send is refused, or None when it is allowed. `connected`: the two accounts accepted a
    contact request (minors receive direct messages only from their connections). Raises nothing."""
    match standing:
        case Standing.SUSPENDED:
            return "this account is suspended"
        case Standing.RESTRICTED:
            if recipient_is_minor:
                return "this account is restricted and cannot contact minors"
            if not existing_conversation:
                return "this account is restricted and cannot start new conversations"
        case Standing.ACTIVE:
            pass
    if blocked_by_recipient:
        return "the recipient has blocked this account"
    if recipient_is_minor and not connected:
        return NOT_CONNECTED_REFUSAL
    return None


def decide_group_add(
    standing: Standing, *, adder_is_minor: bool, member_is_minor: bool, connected: bool, blocked: bool
) -> str | None:
    """Why adding `member` to a group is refused, or None. Raises nothing."""
    if blocked:
        return "that account has blocked you"
    if not member_is_minor:
        return None
    if standing is not Standing.ACTIVE:
        return "this account is restricted and cannot contact minors"
    if not adder_is_minor and not connected:
        return "an adult can add a minor to a group only when the two are connected"
    return None

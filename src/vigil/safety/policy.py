"""Age-aware contact rules: who may message or add whom, decided from facts the server already holds.

Pure: the server's enforcement service loads the facts (standing, blocks, connections, age bands) and
asks these functions; nothing here touches a database.

The functions name the reason for a refusal (`Refusal`, for tests and the server's own records); what
the refused account is told is `NEUTRAL_REFUSAL` for every reason that depends on the other person (a
block, a minor rule, a restriction that applies to minors), so a refusal cannot be used to learn that an
account belongs to a child or has blocked the sender. Only suspension, which depends on the sender
alone, is told as itself.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Set
from typing import TypeVar

__all__ = [
    "NEUTRAL_REFUSAL",
    "NOT_CONNECTED_REFUSAL",
    "Refusal",
    "Standing",
    "decide_group_add",
    "decide_group_join",
    "decide_group_send",
    "decide_invite_link",
    "decide_send",
    "public_refusal",
    "restricted_meets_minor",
    "unconnected_minor_adult",
]

# The one answer an account gets when a rule about the other person refuses it (send, to-device, contact
# request, group add): the same words whether the other person is a minor, blocked the sender, or the
# sender is restricted.
NEUTRAL_REFUSAL = "this account cannot reach that account"

_User = TypeVar("_User")


class Standing(enum.StrEnum):
    ACTIVE = "active"
    RESTRICTED = "restricted"  # no new conversations, no contact with minors
    SUSPENDED = "suspended"  # no sending, no signing in


class Refusal(enum.StrEnum):
    """Why a rule refused; never shown to the refused account except SUSPENDED (see `public_refusal`)."""

    SUSPENDED = "this account is suspended"
    RESTRICTED_FROM_MINORS = "this account is restricted and cannot contact minors"
    RESTRICTED_NEW_CONVERSATION = "this account is restricted and cannot start new conversations"
    BLOCKED_BY_RECIPIENT = "the recipient has blocked this account"
    # Minors' protective default: direct messages only from accounts they are connected to.
    MINOR_NOT_CONNECTED = (
        "the recipient is a minor who is not connected to this account; "
        "send a contact request first (POST /v1/contacts/requests)"
    )
    BLOCKED_BY_MEMBER = "that account has blocked you"  # or, for a link join, a member of the group has
    ADULT_NOT_CONNECTED_TO_MINOR = "an adult can add a minor to a group only when the two are connected"
    # A minor is in a group only when connected to every adult in it (their consent is accepting each
    # adult's contact request), whoever is added and whenever.
    MINOR_WITH_UNCONNECTED_ADULT = "a minor can be in a group only with adults they are connected to"


NOT_CONNECTED_REFUSAL = Refusal.MINOR_NOT_CONNECTED


def public_refusal(refusal: Refusal) -> str:
    """What the refused account is told: suspension as itself, everything else neutrally."""
    return refusal.value if refusal is Refusal.SUSPENDED else NEUTRAL_REFUSAL


def decide_send(
    standing: Standing,
    *,
    blocked_by_recipient: bool,
    recipient_is_minor: bool,
    existing_conversation: bool,
    connected: bool = True,
) -> Refusal | None:
    """Why a send is refused, or None when it is allowed. `connected`: the two accounts accepted a
    contact request (minors receive direct messages only from their connections). Raises nothing."""
    match standing:
        case Standing.SUSPENDED:
            return Refusal.SUSPENDED
        case Standing.RESTRICTED:
            if recipient_is_minor:
                return Refusal.RESTRICTED_FROM_MINORS
            if not existing_conversation:
                return Refusal.RESTRICTED_NEW_CONVERSATION
        case Standing.ACTIVE:
            pass
    if blocked_by_recipient:
        return Refusal.BLOCKED_BY_RECIPIENT
    if recipient_is_minor and not connected:
        return Refusal.MINOR_NOT_CONNECTED
    return None


def decide_group_add(
    standing: Standing,
    *,
    adder_is_minor: bool,
    member_is_minor: bool,
    connected: bool,
    blocked: bool,
    unconnected_minor_adult: bool = False,
    restricted_with_minor: bool = False,
) -> Refusal | None:
    """Why adding `member` to a group is refused, or None. `standing` is the adder's.
    `unconnected_minor_adult`: with the member added, the group would hold a minor and an adult who are
    not connected (see `unconnected_minor_adult`). `restricted_with_minor`: the add would put a
    restricted account and a minor in one group (`restricted_meets_minor`, the same rule as a join by
    link). Raises nothing."""
    if blocked:
        return Refusal.BLOCKED_BY_MEMBER
    if member_is_minor:
        if standing is not Standing.ACTIVE:
            return Refusal.RESTRICTED_FROM_MINORS
        if not adder_is_minor and not connected:
            return Refusal.ADULT_NOT_CONNECTED_TO_MINOR
    if restricted_with_minor:
        return Refusal.RESTRICTED_FROM_MINORS
    if unconnected_minor_adult:
        return Refusal.MINOR_WITH_UNCONNECTED_ADULT
    return None


def decide_group_join(
    standing: Standing,
    *,
    group_has_minors: bool,
    blocked_by_member: bool,
    unconnected_minor_adult: bool,
    restricted_with_minor: bool = False,
) -> Refusal | None:
    """Why joining a group by invite link is refused, or None: the rules of `decide_group_add` with the
    joiner in both roles. A restricted account starts no new conversations, so it joins nothing by link
    (and never a group with minors); nobody joins a group where a member has blocked them; a minor is in
    a group only with adults they are connected to, so an adult unknown to a minor in the group, or a
    minor unknown to an adult in it, is refused; a minor does not join a group holding a restricted
    account (`restricted_with_minor`, `restricted_meets_minor`). `group_has_minors` counts the members
    before the join. Raises nothing."""
    match standing:
        case Standing.SUSPENDED:
            return Refusal.SUSPENDED
        case Standing.RESTRICTED:
            return Refusal.RESTRICTED_FROM_MINORS if group_has_minors else Refusal.RESTRICTED_NEW_CONVERSATION
        case Standing.ACTIVE:
            pass
    if blocked_by_member:
        return Refusal.BLOCKED_BY_MEMBER
    if restricted_with_minor:
        return Refusal.RESTRICTED_FROM_MINORS
    if unconnected_minor_adult:
        return Refusal.MINOR_WITH_UNCONNECTED_ADULT
    return None


def restricted_meets_minor(
    *,
    newcomer_is_minor: bool,
    newcomer_standing: Standing,
    group_has_minors: bool,
    group_has_restricted: bool,
) -> bool:
    """Whether a newcomer (added, or joining by link) would put a restricted account and a minor in one
    group: a restricted newcomer where a minor is a member, or a minor newcomer where a restricted
    account is. A restricted account contacts no minor, and a group is contact with every member, so
    this holds whoever brings the newcomer in. `group_has_*` count the members before the newcomer;
    "restricted" is every standing but active. Raises nothing."""
    restricted = newcomer_standing is not Standing.ACTIVE
    return (restricted and group_has_minors) or (newcomer_is_minor and group_has_restricted)


def decide_group_send(standing: Standing, *, group_has_minors: bool) -> Refusal | None:
    """Why a member's group message is refused, or None: `decide_send` for a conversation the sender is
    already in (membership is the existing conversation). A suspended account sends nothing; a
    restricted one sends to no group holding a minor, whenever it was restricted. Raises nothing."""
    match standing:
        case Standing.SUSPENDED:
            return Refusal.SUSPENDED
        case Standing.RESTRICTED:
            return Refusal.RESTRICTED_FROM_MINORS if group_has_minors else None
        case Standing.ACTIVE:
            return None


def decide_invite_link(standing: Standing) -> Refusal | None:
    """Why an admin may not issue an invite link, or None: a link invites new conversations, which a
    restricted account may not start. Raises nothing."""
    match standing:
        case Standing.SUSPENDED:
            return Refusal.SUSPENDED
        case Standing.RESTRICTED:
            return Refusal.RESTRICTED_NEW_CONVERSATION
        case Standing.ACTIVE:
            return None


def unconnected_minor_adult(
    minors: Collection[_User], adults: Collection[_User], connections: Set[frozenset[_User]]
) -> tuple[_User, _User] | None:
    """The first (minor, adult) pair of a group's members that is not connected, or None when every
    minor is connected to every adult. Raises nothing."""
    for minor in minors:
        for adult in adults:
            if frozenset((minor, adult)) not in connections:
                return minor, adult
    return None

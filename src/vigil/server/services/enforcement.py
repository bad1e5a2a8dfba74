"""Server-side enforcement of account actions and blocks on the send and sign-in paths.

`decide_send` is the pure rule; the two async checks load what it needs (at most three small indexed
queries on the send path, one primary-key lookup on authentication).
"""

from __future__ import annotations

import enum

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.errors import PolicyViolation
from vigil.protocol.wire import AgeBand
from vigil.server.db.models import MessageRow, UserRow
from vigil.server.db.safety_models import AccountStandingRow, BlockRow

__all__ = ["Standing", "check_login", "check_send", "decide_send", "standing_of"]


class Standing(enum.StrEnum):
    ACTIVE = "active"
    RESTRICTED = "restricted"  # no new conversations, no contact with minors
    SUSPENDED = "suspended"  # no sending, no signing in


def decide_send(
    standing: Standing, *, blocked_by_recipient: bool, recipient_is_minor: bool, existing_conversation: bool
) -> str | None:
    """Why a send is refused, or None when it is allowed."""
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
    return None


async def standing_of(session: AsyncSession, user_id: int) -> Standing:
    row = await session.get(AccountStandingRow, user_id)
    return Standing.ACTIVE if row is None else Standing(row.standing)


async def check_login(session: AsyncSession, user_id: int) -> None:
    """Raises PolicyViolation for a suspended account."""
    if await standing_of(session, user_id) is Standing.SUSPENDED:
        raise PolicyViolation("this account is suspended")


async def _has_conversation(
    session: AsyncSession, sender: UserRow | int, sender_name: str, recipient: UserRow
) -> bool:
    sender_id = sender if isinstance(sender, int) else sender.id
    found = await session.scalar(
        select(MessageRow.id)
        .where(
            or_(
                (MessageRow.sender_user_id == sender_id) & (MessageRow.conversation == recipient.username),
                (MessageRow.sender_user_id == recipient.id) & (MessageRow.conversation == sender_name),
            )
        )
        .limit(1)
    )
    return found is not None


async def check_send(
    session: AsyncSession, sender_user_id: int, sender_username: str, recipient: UserRow
) -> None:
    """Raises PolicyViolation when the sender is suspended, restricted from this contact, or blocked by
    the recipient. Sending to one's own devices is always allowed."""
    if recipient.id == sender_user_id:
        return
    standing = await standing_of(session, sender_user_id)
    blocked = (
        await session.get(BlockRow, {"blocker_user_id": recipient.id, "blocked_user_id": sender_user_id})
    ) is not None
    existing = True
    if standing is Standing.RESTRICTED:
        existing = await _has_conversation(session, sender_user_id, sender_username, recipient)
    refusal = decide_send(
        standing,
        blocked_by_recipient=blocked,
        recipient_is_minor=AgeBand(recipient.age_band).is_minor,
        existing_conversation=existing,
    )
    if refusal is not None:
        raise PolicyViolation(refusal)

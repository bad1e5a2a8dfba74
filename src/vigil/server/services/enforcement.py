"""Server-side enforcement of account actions and blocks on the send and sign-in paths.

The rules themselves are pure (`vigil.safety.policy`); the async checks here load what they need (at
most three small indexed queries on the send path, one primary-key lookup on authentication).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from vigil.errors import NotFoundError, PolicyViolation
from vigil.protocol.ids import UserId
from vigil.protocol.wire import AgeBand
from vigil.safety.policy import (
    Standing,
    decide_group_add,
    decide_group_join,
    decide_group_send,
    decide_invite_link,
    decide_send,
    public_refusal,
    restricted_meets_minor,
    unconnected_minor_adult,
)
from vigil.server.db.accounts import StandingRepository, UserRow
from vigil.server.db.contacts import BlockRepository, ContactRepository
from vigil.server.db.groups import GroupRepository
from vigil.server.db.messaging import MessageRepository

__all__ = [
    "SendParties",
    "check_group_add",
    "check_group_join",
    "check_group_send",
    "check_invite_link",
    "check_login",
    "check_send",
    "check_send_given",
    "is_connected",
    "standing_of",
]


async def standing_of(session: AsyncSession, user_id: int) -> Standing:
    row = await StandingRepository(session).get(user_id)
    return Standing.ACTIVE if row is None else Standing(row.standing)


async def is_connected(session: AsyncSession, a: int, b: int) -> bool:
    return await ContactRepository(session).connected(a, b)


async def check_login(session: AsyncSession, user_id: int) -> None:
    """Raises PolicyViolation for a suspended account."""
    if await standing_of(session, user_id) is Standing.SUSPENDED:
        raise PolicyViolation("this account is suspended")


async def check_send(
    session: AsyncSession, sender_user_id: int, sender_username: UserId, recipient: UserRow
) -> None:
    """Raises PolicyViolation when the sender is suspended, restricted from this contact, or blocked by
    the recipient; the message is neutral unless the sender is suspended (`policy.public_refusal`).
    Sending to one's own devices is always allowed."""
    if recipient.id == sender_user_id:
        return
    standing = await standing_of(session, sender_user_id)
    blocked = await BlockRepository(session).exists(recipient.id, sender_user_id)
    connected = True
    if AgeBand(recipient.age_band).is_minor:
        connected = await is_connected(session, sender_user_id, recipient.id)
    await check_send_given(
        session,
        SendParties(
            sender_user_id, sender_username, recipient.id, UserId(recipient.username), recipient.age_band
        ),
        standing,
        blocked_by_recipient=blocked,
        connected=connected,
    )


@dataclass(frozen=True, slots=True)
class SendParties:
    sender_user_id: int
    sender_username: UserId
    recipient_user_id: int
    recipient_username: UserId
    recipient_age_band: str


async def check_send_given(
    session: AsyncSession,
    parties: SendParties,
    standing: Standing,
    *,
    blocked_by_recipient: bool,
    connected: bool,
) -> None:
    """`check_send` with its inputs already looked up (the send path reads them with the recipient, in
    one query); only a restricted sender's "existing conversation" is looked up here."""
    if parties.recipient_user_id == parties.sender_user_id:
        return
    existing = True
    if standing is Standing.RESTRICTED:
        existing = await MessageRepository(session).has_conversation(
            parties.sender_user_id,
            parties.sender_username,
            parties.recipient_user_id,
            parties.recipient_username,
        )
    recipient_is_minor = AgeBand(parties.recipient_age_band).is_minor
    refusal = decide_send(
        standing,
        blocked_by_recipient=blocked_by_recipient,
        recipient_is_minor=recipient_is_minor,
        existing_conversation=existing,
        connected=connected or not recipient_is_minor,
    )
    if refusal is not None:
        raise PolicyViolation(public_refusal(refusal))


async def check_group_add(
    session: AsyncSession,
    adder_user_id: int,
    adder_band: AgeBand,
    member: UserRow,
    others: Sequence[UserRow],
) -> None:
    """Raises PolicyViolation (neutral, see `policy.public_refusal`) when `member` may not join a group
    whose other members are `others` (the adder among them): unconnected adults cannot add a minor,
    restricted accounts cannot add minors, nobody adds someone who blocked them, a minor is in a
    group only with adults they are connected to, whichever of the two joins last, and a restricted
    account and a minor are never brought together (`_restricted_meets_minor`)."""
    if member.id == adder_user_id:
        return
    standings = await _standings(session, [member.id, adder_user_id, *(u.id for u in others)])
    member_is_minor = AgeBand(member.age_band).is_minor
    refusal = decide_group_add(
        standings[adder_user_id],
        adder_is_minor=adder_band.is_minor,
        member_is_minor=member_is_minor,
        connected=(not member_is_minor) or await is_connected(session, adder_user_id, member.id),
        blocked=await BlockRepository(session).exists(member.id, adder_user_id),
        unconnected_minor_adult=await _unconnected_minor_adult(session, member, others),
        restricted_with_minor=_restricted_meets_minor(member, others, standings),
    )
    if refusal is not None:
        raise PolicyViolation(public_refusal(refusal))


async def _standings(session: AsyncSession, user_ids: Sequence[int]) -> dict[int, Standing]:
    """Each of `user_ids` with its standing (active when it has none), in one query."""
    stored = await StandingRepository(session).of_users(user_ids)
    return {u: Standing(stored.get(u, Standing.ACTIVE)) for u in user_ids}


async def _unconnected_minor_adult(
    session: AsyncSession, newcomer: UserRow, members: Sequence[UserRow]
) -> bool:
    """`policy.unconnected_minor_adult` for the group `members` with `newcomer` added (the newcomer, if
    listed, is skipped): only the newcomer's pairs are new, so only their connections are read."""
    newcomer_is_minor = AgeBand(newcomer.age_band).is_minor
    counterparts = [
        u.id for u in members if u.id != newcomer.id and AgeBand(u.age_band).is_minor != newcomer_is_minor
    ]
    connected_to = await ContactRepository(session).connected_among(newcomer.id, counterparts)
    connections = {frozenset((newcomer.id, other)) for other in connected_to}
    minors, adults = ([newcomer.id], counterparts) if newcomer_is_minor else (counterparts, [newcomer.id])
    return unconnected_minor_adult(minors, adults, connections) is not None


def _restricted_meets_minor(
    newcomer: UserRow, members: Sequence[UserRow], standings: Mapping[int, Standing]
) -> bool:
    """`policy.restricted_meets_minor` for `newcomer` joining `members` (the newcomer, if listed, is
    skipped); `standings` holds the newcomer's and every member's."""
    others = [u for u in members if u.id != newcomer.id]
    return restricted_meets_minor(
        newcomer_is_minor=AgeBand(newcomer.age_band).is_minor,
        newcomer_standing=standings[newcomer.id],
        group_has_minors=any(AgeBand(u.age_band).is_minor for u in others),
        group_has_restricted=any(standings[u.id] is not Standing.ACTIVE for u in others),
    )


async def check_group_send(session: AsyncSession, sender_user_id: int, group_id: str) -> None:
    """Raises NotFoundError unless the sender is a member of the group, PolicyViolation when the member
    may not send to it (`policy.decide_group_send`: nothing from a suspended account, nothing from a
    restricted one to a group holding a minor), with the same answer as a refused direct send. The
    membership and the sender's standing are read in one query (a group send's hot path); the members'
    age bands only for a restricted sender."""
    groups = GroupRepository(session)
    is_member, stored = await groups.member_standing(group_id, sender_user_id)
    if not is_member:
        raise NotFoundError("no such group (or you are not a member)")
    standing = Standing.ACTIVE if stored is None else Standing(stored)
    if standing is Standing.ACTIVE:
        return
    has_minor = standing is Standing.RESTRICTED and await groups.has_minor(group_id)
    refusal = decide_group_send(standing, group_has_minors=has_minor)
    if refusal is not None:
        raise PolicyViolation(public_refusal(refusal))


async def check_group_join(session: AsyncSession, joiner: UserRow, members: Sequence[UserRow]) -> None:
    """Raises PolicyViolation (neutral, see `policy.public_refusal`) when `joiner` may not join, by invite
    link, a group whose members are `members` (`policy.decide_group_join`: restricted accounts join
    nothing by link, nobody joins where a member blocked them, a minor is in a group only with adults
    they are connected to and with no restricted account)."""
    others = [u for u in members if u.id != joiner.id]
    standings = await _standings(session, [joiner.id, *(u.id for u in others)])
    refusal = decide_group_join(
        standings[joiner.id],
        group_has_minors=any(AgeBand(u.age_band).is_minor for u in others),
        blocked_by_member=await BlockRepository(session).blocked_by_any([u.id for u in others], joiner.id),
        unconnected_minor_adult=await _unconnected_minor_adult(session, joiner, others),
        restricted_with_minor=_restricted_meets_minor(joiner, others, standings),
    )
    if refusal is not None:
        raise PolicyViolation(public_refusal(refusal))


async def check_invite_link(session: AsyncSession, admin_user_id: int) -> None:
    """Raises PolicyViolation when the admin may not issue an invite link (`policy.decide_invite_link`)."""
    refusal = decide_invite_link(await standing_of(session, admin_user_id))
    if refusal is not None:
        raise PolicyViolation(public_refusal(refusal))

"""Groups: membership (create, add, remove, leave, list, invite links) and group sends.

The server knows who is in a group and with which role, never its name, topic or content. A group send
is one Megolm ciphertext: it is stored once, on the message row (`shared_body`), with one small queue
entry per recipient device, and never re-encrypted. The franking tag binds the commitment to the
sender, `group:<id>`, time and id. Non-members get 404 for a group (its existence is not revealed),
members who are not admins get 403 for admin actions; every refused request changes nothing.

Invite links: an admin issues a link (a 256-bit random token, shown once; the server keeps its SHA-256),
and whoever presents the token joins as a plain member, under the same safety rules as an add
(`enforcement.check_group_join`). Members' devices learn of the newcomer as of an added member: the next
group send is answered 409 `stale_devices` until the sender shares its session key with the new devices.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from vigil.errors import (
    ConflictError,
    GoneError,
    NotFoundError,
    PermissionDenied,
    ValidationError,
    VigilError,
)
from vigil.protocol.encoding import b64decode, b64encode
from vigil.protocol.franking import FrankingContext, server_tag
from vigil.protocol.group_wire import (
    MAX_GROUP_MEMBERS,
    AddMemberRequest,
    CreateGroupRequest,
    GroupDevices,
    GroupInfo,
    GroupList,
    GroupMember,
    GroupRole,
    GroupSendRequest,
    GroupSummary,
    InviteLink,
    JoinGroupRequest,
    group_conversation,
)
from vigil.protocol.wire import MEGOLM_MESSAGE_TYPE, DeviceInfo, SendAccepted, StaleDevices
from vigil.safety.behavior.events import GroupId, GroupJoined, MetadataEvent, UserId
from vigil.server.batching import Batcher, write_lock
from vigil.server.context import ServerContext
from vigil.server.db.accounts import UserRepository, UserRow
from vigil.server.db.blobs import BlobRepository
from vigil.server.db.groups import (
    GroupMemberRow,
    GroupRepository,
    GroupRow,
    InviteLinkRepository,
    InviteLinkRow,
)
from vigil.server.db.messaging import AcceptedMessage, MessageRepository
from vigil.server.delivery import Push, pushes_of_one_message
from vigil.server.services import enforcement, metadata
from vigil.server.services.accounts import AuthenticatedDevice
from vigil.server.services.keys import device_info
from vigil.server.services.messaging import (
    StaleDevicesError,
    accept_in_batch,
    committed_delivery,
    size_bucket,
)

__all__ = [
    "add_member",
    "create_group",
    "create_invite_link",
    "group_devices",
    "group_info",
    "join_by_link",
    "leave_group",
    "list_groups",
    "remove_member",
    "revoke_invite_link",
    "send_group_message",
]


async def _info(groups: GroupRepository, group_id: str) -> GroupInfo:
    return GroupInfo(
        group_id=group_id,
        members=[
            GroupMember(username=username, role=GroupRole(row.role), joined_at_ms=row.joined_at_ms)
            for row, username in await groups.members(group_id)
        ],
    )


async def _membership(groups: GroupRepository, group_id: str, by: AuthenticatedDevice) -> GroupMemberRow:
    """Raises NotFoundError unless the group exists and the caller is a member."""
    member = await groups.member(group_id, by.user_id)
    if member is None:
        raise NotFoundError("no such group (or you are not a member)")
    return member


async def _admin(groups: GroupRepository, group_id: str, by: AuthenticatedDevice) -> None:
    """Raises NotFoundError for a non-member, PermissionDenied for a member who is not an admin."""
    if GroupRole((await _membership(groups, group_id, by)).role) is not GroupRole.ADMIN:
        raise PermissionDenied("only a group admin can do this")


async def create_group(ctx: ServerContext, by: AuthenticatedDevice, request: CreateGroupRequest) -> GroupInfo:
    """The caller becomes the admin. Raises NotFoundError naming the first unknown member (nothing is
    created), ValidationError if a member is listed twice or is the caller, PolicyViolation when a
    member may not join (`enforcement.check_group_add`: e.g. a minor with an adult they are not
    connected to)."""
    if len(set(request.members)) != len(request.members) or by.username in request.members:
        raise ValidationError("list each other member once")
    async with ctx.sessions() as session, session.begin():
        users = UserRepository(session)
        now = ctx.clock_ms()
        group_id = secrets.token_hex(16)
        members = [
            GroupMemberRow(
                group_id=group_id, user_id=by.user_id, role=GroupRole.ADMIN.value, joined_at_ms=now
            )
        ]
        creator = await users.by_id(by.user_id)
        assert creator is not None  # the authenticated caller's own account
        joined: list[UserRow] = [creator]
        for username in request.members:
            user = await users.by_username(username)
            if user is None:
                raise NotFoundError(f"no user named {username}")
            await enforcement.check_group_add(session, by.user_id, by.age_band, user, joined)
            joined.append(user)
            members.append(
                GroupMemberRow(
                    group_id=group_id, user_id=user.id, role=GroupRole.MEMBER.value, joined_at_ms=now
                )
            )
        groups = GroupRepository(session)
        await groups.add(GroupRow(id=group_id, created_by_user_id=by.user_id, created_at_ms=now), members)
        await metadata.record_group_created(ctx, session, now, by.username, group_id, request.members)
        return await _info(groups, group_id)


async def group_info(ctx: ServerContext, by: AuthenticatedDevice, group_id: str) -> GroupInfo:
    """Raises NotFoundError unless the caller is a member."""
    async with ctx.sessions() as session:
        groups = GroupRepository(session)
        await _membership(groups, group_id, by)
        return await _info(groups, group_id)


async def list_groups(ctx: ServerContext, by: AuthenticatedDevice) -> GroupList:
    async with ctx.sessions() as session:
        rows = await GroupRepository(session).groups_of(by.user_id)
        return GroupList(
            groups=[GroupSummary(group_id=g, role=GroupRole(role), members=count) for g, role, count in rows]
        )


async def add_member(
    ctx: ServerContext, by: AuthenticatedDevice, group_id: str, request: AddMemberRequest
) -> GroupInfo:
    """Admins only. Raises NotFoundError (no such group for the caller, or no such user),
    PermissionDenied (not an admin), ConflictError (already a member, or the group is full),
    PolicyViolation when the user may not join (`enforcement.check_group_add`)."""
    # Serialized with every other add and link join of the group, as `join_by_link` is: two concurrent
    # adds cannot both pass the checks (the member limit, a minor and an adult unknown to them).
    async with write_lock(ctx.engine), ctx.sessions() as session, session.begin():
        groups = GroupRepository(session)
        await groups.lock(group_id)  # before every check, the caller's own role included
        await _admin(groups, group_id, by)
        user = await UserRepository(session).by_username(request.username)
        if user is None:
            raise NotFoundError(f"no user named {request.username}")
        if await groups.member(group_id, user.id) is not None:
            raise ConflictError(f"{request.username} is already a member")
        members = await groups.member_users(group_id)
        await enforcement.check_group_add(session, by.user_id, by.age_band, user, members)
        await metadata.record_group_created(
            ctx, session, ctx.clock_ms(), by.username, group_id, [user.username], created=False
        )
        if len(members) >= MAX_GROUP_MEMBERS:
            raise ConflictError(f"a group has at most {MAX_GROUP_MEMBERS} members")
        await groups.add_member(
            GroupMemberRow(
                group_id=group_id, user_id=user.id, role=request.role.value, joined_at_ms=ctx.clock_ms()
            )
        )
        return await _info(groups, group_id)


def _token_hash(token: str) -> bytes:
    # The token is 256 random bits, so a plain SHA-256 cannot be reversed by guessing (no stretching
    # needed), and a stolen table of hashes lets nobody join.
    return hashlib.sha256(token.encode("ascii")).digest()


async def create_invite_link(ctx: ServerContext, by: AuthenticatedDevice, group_id: str) -> InviteLink:
    """Admins only. Issues the group's invite link, revoking the previous one (a group has at most one
    live link). Raises NotFoundError (no such group for the caller), PermissionDenied (not an admin),
    PolicyViolation when the admin's account may not invite (`enforcement.check_invite_link`)."""
    async with write_lock(ctx.engine), ctx.sessions() as session, session.begin():
        groups = GroupRepository(session)
        await groups.lock(group_id)  # two concurrent issues would otherwise leave two live links
        await _admin(groups, group_id, by)
        await enforcement.check_invite_link(session, by.user_id)
        links = InviteLinkRepository(session)
        now = ctx.clock_ms()
        await links.revoke_live(group_id, now)
        token = secrets.token_urlsafe(32)
        await links.add(InviteLinkRow(group_id=group_id, token_hash=_token_hash(token), created_at_ms=now))
        return InviteLink(group_id=group_id, token=token, created_at_ms=now)


async def revoke_invite_link(ctx: ServerContext, by: AuthenticatedDevice, group_id: str) -> None:
    """Admins only. Raises NotFoundError (no such group for the caller, or no live link),
    PermissionDenied (not an admin)."""
    async with write_lock(ctx.engine), ctx.sessions() as session, session.begin():
        groups = GroupRepository(session)
        await groups.lock(group_id)  # a join by the link either commits first or sees it revoked
        await _admin(groups, group_id, by)
        if not await InviteLinkRepository(session).revoke_live(group_id, ctx.clock_ms()):
            raise NotFoundError("the group has no live invite link")


async def join_by_link(ctx: ServerContext, by: AuthenticatedDevice, request: JoinGroupRequest) -> GroupInfo:
    """Joins the caller to the link's group as a plain member and logs a `GroupJoined` event. Raises
    NotFoundError (no such link), GoneError (the link was revoked), ConflictError (already a member, or
    the group is full), PolicyViolation when the caller may not join (`enforcement.check_group_join`)."""
    # Joins and adds of one group are serialized (the group row locked, or SQLite's writer lock held),
    # so two concurrent ones cannot both pass the checks: a minor and an adult unknown to them, say.
    async with write_lock(ctx.engine), ctx.sessions() as session, session.begin():
        links, groups = InviteLinkRepository(session), GroupRepository(session)
        token_hash = _token_hash(request.token)
        link = await links.by_token_hash(token_hash)
        if link is not None:
            await groups.lock(link.group_id)
            # Read again under the group's lock, which a revoke and a new link take too: a revoke (or the
            # group's deletion) that committed after the first read is seen, and admits nobody.
            link = await links.by_token_hash(token_hash)
        if link is None:
            raise NotFoundError("no such invite link")
        if link.revoked_at_ms is not None:
            raise GoneError("this invite link was revoked")
        group_id = link.group_id
        if await groups.member(group_id, by.user_id) is not None:
            raise ConflictError("you are already a member")
        members = await groups.member_users(group_id)
        if len(members) >= MAX_GROUP_MEMBERS:
            raise ConflictError(f"a group has at most {MAX_GROUP_MEMBERS} members")
        joiner = await UserRepository(session).by_id(by.user_id)
        assert joiner is not None  # the authenticated caller's own account
        await enforcement.check_group_join(session, joiner, members)
        now = ctx.clock_ms()
        await groups.add_member(
            GroupMemberRow(
                group_id=group_id, user_id=by.user_id, role=GroupRole.MEMBER.value, joined_at_ms=now
            )
        )
        await metadata.record(ctx, session, GroupJoined(now, UserId(by.username), GroupId(group_id)))
        return await _info(groups, group_id)


async def remove_member(
    ctx: ServerContext, by: AuthenticatedDevice, group_id: str, username: str
) -> GroupInfo:
    """Admins only; to remove yourself, leave. Raises NotFoundError (no such group for the caller, or the
    user is not a member), PermissionDenied (not an admin), ValidationError (removing yourself)."""
    if username == by.username:
        raise ValidationError("use leave to remove yourself")
    async with ctx.sessions() as session, session.begin():
        groups = GroupRepository(session)
        await _admin(groups, group_id, by)
        user = await UserRepository(session).by_username(username)
        if user is None or await groups.member(group_id, user.id) is None:
            raise NotFoundError(f"{username} is not a member")
        await groups.remove_member(group_id, user.id, now_ms=ctx.clock_ms())
        return await _info(groups, group_id)


async def leave_group(ctx: ServerContext, by: AuthenticatedDevice, group_id: str) -> None:
    """Leaves the group. When the last admin leaves, the longest-standing member becomes admin, so a
    group is never left without one. Raises NotFoundError unless the caller is a member."""
    async with ctx.sessions() as session, session.begin():
        groups = GroupRepository(session)
        await _membership(groups, group_id, by)
        await groups.remove_member(group_id, by.user_id, now_ms=ctx.clock_ms())
        remaining = [row for row, _ in await groups.members(group_id)]
        if remaining and not any(GroupRole(row.role) is GroupRole.ADMIN for row in remaining):
            remaining[0].role = GroupRole.ADMIN.value


async def group_devices(ctx: ServerContext, by: AuthenticatedDevice, group_id: str) -> GroupDevices:
    """Raises NotFoundError unless the caller is a member."""
    async with ctx.sessions() as session:
        groups = GroupRepository(session)
        await _membership(groups, group_id, by)
        devices: dict[str, list[DeviceInfo]] = defaultdict(list)
        for device, username in await groups.member_devices(group_id):
            devices[username].append(device_info(device))
        return GroupDevices(group_id=group_id, devices=dict(devices))


async def send_group_message(
    ctx: ServerContext, by: AuthenticatedDevice, group_id: str, request: GroupSendRequest
) -> SendAccepted:
    """Accepts one group message for every member device except the sending one. Concurrent group sends
    are committed together (group commit, `_send_batch`); the answer comes only after the commit.

    Raises NotFoundError unless the sender is a member, PolicyViolation when the sender's standing
    refuses it (`enforcement.check_group_send`: a restricted account posts in no group holding a minor),
    StaleDevicesError when `devices` is not exactly
    the current member devices, ValidationError for duplicate devices or foreign attachment blobs.
    """
    if len(set(request.devices)) != len(request.devices):
        raise ValidationError("list each device once")
    batcher: _GroupSendBatcher = ctx.batchers.get("group_send", lambda items: _send_batch(ctx, items))
    return await batcher.submit((by, group_id, request))


_GroupSend = tuple[AuthenticatedDevice, str, GroupSendRequest]
_GroupSendBatcher = Batcher[_GroupSend, SendAccepted]


@dataclass(slots=True)
class _Planned:
    """A group message that passed every check, waiting for the batch's inserts."""

    sender: str
    values: dict[str, Any]
    device_ids: list[str]
    event: MetadataEvent


@dataclass(slots=True)
class _BatchState:
    """What one batch transaction already looked up; sends change none of it (membership, devices)."""

    existing: dict[tuple[int, str], SendAccepted] = field(default_factory=dict)
    members: set[tuple[str, int]] = field(default_factory=set)
    devices: dict[str, dict[str, str]] = field(default_factory=dict)


async def _send_batch(ctx: ServerContext, items: Sequence[_GroupSend]) -> list[SendAccepted | Exception]:
    """One transaction for the whole batch: one INSERT of the messages (each with its one shared body),
    one of all their queue entries, one of their metadata events; a message refused by a check fails
    alone. If the transaction itself fails, each message is retried in its own transaction so that a
    failure stays with its message."""
    results: list[SendAccepted | Exception] = []
    planned: list[_Planned] = []
    try:
        async with write_lock(ctx.engine), ctx.sessions() as session, session.begin():
            writer = MessageRepository(session)
            wanted = {(by.user_id, request.id) for by, _, request in items}
            state = _BatchState(
                existing={
                    (r.sender_user_id, r.client_id): _duplicate(r) for r in await writer.by_client_ids(wanted)
                }
            )
            for by, group_id, request in items:
                try:
                    outcome = await _prepare(ctx, session, state, by, group_id, request)
                except VigilError as error:
                    results.append(error)
                    continue
                if isinstance(outcome, SendAccepted):
                    results.append(outcome)
                    continue
                planned.append(outcome)
                results.append(
                    accept_in_batch(
                        state.existing, by.user_id, request.id, outcome.values, len(outcome.device_ids)
                    )
                )
            if planned:
                inserted = await writer.add_shared([(p.values, p.device_ids) for p in planned])
                await metadata.record_many(ctx, session, [p.event for p in planned])
    except Exception:
        if len(items) == 1:
            raise
        alone: list[SendAccepted | Exception] = []
        for item in items:
            try:
                alone.extend(await _send_batch(ctx, [item]))
            except Exception as error:  # this message's own failure
                alone.append(error)
        return alone
    if planned:
        handed: dict[str, list[Push]] = {}
        for p, (_, entry_ids) in zip(planned, inserted, strict=True):
            # One wire form per message (the body encoded once), its entries differing only in their id.
            shared = committed_delivery(p.sender, p.values, 0, MEGOLM_MESSAGE_TYPE, p.values["shared_body"])
            pushes = pushes_of_one_message(shared, entry_ids)
            for device_id, push in zip(p.device_ids, pushes, strict=True):
                handed.setdefault(device_id, []).append(push)
        await ctx.delivery.hand_off(handed)
    return results


def _duplicate(previous: AcceptedMessage) -> SendAccepted:
    return SendAccepted(
        message_id=previous.client_id,
        server_ts_ms=previous.server_ts_ms,
        devices=previous.device_count,
        duplicate=True,
        franking_tag=b64encode(previous.franking_tag),
    )


async def _prepare(
    ctx: ServerContext,
    session: AsyncSession,
    state: _BatchState,
    by: AuthenticatedDevice,
    group_id: str,
    request: GroupSendRequest,
) -> SendAccepted | _Planned:
    """Every check of one group message; nothing is written before the last check passed (attachment
    fetchers are written last)."""
    previous = state.existing.get((by.user_id, request.id))
    if previous is not None:
        return previous
    groups = GroupRepository(session)
    if (group_id, by.user_id) not in state.members:
        await enforcement.check_group_send(session, by.user_id, group_id)
        state.members.add((group_id, by.user_id))
    members = state.devices.get(group_id)
    if members is None:
        members = state.devices[group_id] = await groups.member_device_owners(group_id)
    owners = {d: username for d, username in members.items() if d != by.device_id}
    provided = set(request.devices)
    if provided != set(owners):
        await _raise_stale(groups, group_id, by, owners, provided)
    commitment = b64decode(request.commitment, field="commitment", max_bytes=32)
    body = b64decode(request.body, field="group ciphertext")
    blobs = BlobRepository(session)
    attached = []
    for blob_id in request.attachments:
        blob = await blobs.get(blob_id)
        if blob is None or blob.uploader_user_id != by.user_id:
            raise ValidationError(f"attachment {blob_id} was not uploaded by the sender")
        attached.append(blob)
    for blob in attached:
        await blobs.add_fetchers(blob.id, [d for d in owners if not await blobs.is_fetcher(blob.id, d)])
        blob.attached = True
    now_ms = ctx.clock_ms()
    conversation = group_conversation(group_id)
    tag = server_tag(
        ctx.franking_key, FrankingContext(commitment, by.username, conversation, now_ms, request.id)
    )
    bucket = size_bucket(len(body))
    values: dict[str, Any] = {
        "client_id": request.id,
        "sender_user_id": by.user_id,
        "sender_device_id": by.device_id,
        "conversation": conversation,
        "kind": request.kind.value,
        "commitment": commitment,
        "franking_tag": tag,
        "server_ts_ms": now_ms,
        "device_count": len(owners),
        # One ciphertext for every device, stored once: the queue entries carry no body.
        "shared_body": body,
    }
    event = metadata.message_event(
        now_ms, by.username, recipient=None, group=group_id, size_bucket=bucket, kind=request.kind
    )
    return _Planned(by.username, values, list(owners), event)


async def _raise_stale(
    groups: GroupRepository,
    group_id: str,
    by: AuthenticatedDevice,
    owners: dict[str, str],
    provided: set[str],
) -> None:
    missing: dict[str, list[str]] = defaultdict(list)
    extra: dict[str, list[str]] = defaultdict(list)
    for device_id in sorted(set(owners) - provided):
        missing[owners[device_id]].append(device_id)
    unexpected = sorted(provided - set(owners))
    known = await groups.device_owners(unexpected)
    for device_id in unexpected:
        extra[known.get(device_id, "")].append(device_id)
    current: dict[str, list[DeviceInfo]] = defaultdict(list)
    for device, username in await groups.member_devices(group_id):
        if device.id != by.device_id:
            current[username].append(device_info(device))
    raise StaleDevicesError(
        StaleDevices(
            detail="the group's device list is out of date; share the key with exactly these devices",
            missing=dict(missing),
            extra=dict(extra),
            devices=dict(current),
        )
    )

"""Groups (`/v1/groups`) and device-to-device control messages (`/v1/to-device`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from vigil.protocol.group_wire import (
    GROUP_ID_PATTERN,
    AddMemberRequest,
    CreateGroupRequest,
    GroupDevices,
    GroupInfo,
    GroupList,
    GroupSendRequest,
    InviteLink,
    JoinGroupRequest,
    ToDeviceAccepted,
    ToDeviceRequest,
)
from vigil.protocol.wire import SendAccepted
from vigil.server.api.deps import AuthDevice, Context
from vigil.server.ratelimit import Limit
from vigil.server.services import groups, todevice

router = APIRouter(prefix="/v1", tags=["groups"])

GroupIdPath = Annotated[str, Path(pattern=GROUP_ID_PATTERN)]
UsernamePath = Annotated[str, Path(pattern=r"^[a-z0-9_]{3,32}$")]


@router.post("/groups", status_code=201)
async def create(request: CreateGroupRequest, ctx: Context, device: AuthDevice) -> GroupInfo:
    return await groups.create_group(ctx, device, request)


@router.get("/groups")
async def list_mine(ctx: Context, device: AuthDevice) -> GroupList:
    return await groups.list_groups(ctx, device)


@router.get("/groups/{group_id}")
async def info(group_id: GroupIdPath, ctx: Context, device: AuthDevice) -> GroupInfo:
    return await groups.group_info(ctx, device, group_id)


@router.post("/groups/{group_id}/members")
async def add_member(
    group_id: GroupIdPath, request: AddMemberRequest, ctx: Context, device: AuthDevice
) -> GroupInfo:
    return await groups.add_member(ctx, device, group_id, request)


@router.delete("/groups/{group_id}/members/{username}")
async def remove_member(
    group_id: GroupIdPath, username: UsernamePath, ctx: Context, device: AuthDevice
) -> GroupInfo:
    return await groups.remove_member(ctx, device, group_id, username)


@router.post("/groups/{group_id}/leave", status_code=204)
async def leave(group_id: GroupIdPath, ctx: Context, device: AuthDevice) -> Response:
    await groups.leave_group(ctx, device, group_id)
    return Response(status_code=204)


@router.post("/groups/{group_id}/link", status_code=201)
async def create_link(group_id: GroupIdPath, ctx: Context, device: AuthDevice) -> InviteLink:
    """A new invite link for the group (admins only); the previous link stops working."""
    return await groups.create_invite_link(ctx, device, group_id)


@router.delete("/groups/{group_id}/link", status_code=204)
async def revoke_link(group_id: GroupIdPath, ctx: Context, device: AuthDevice) -> Response:
    await groups.revoke_invite_link(ctx, device, group_id)
    return Response(status_code=204)


@router.post("/groups/join")
async def join(request: JoinGroupRequest, ctx: Context, device: AuthDevice) -> GroupInfo:
    """Join a group by its invite link: 404 unknown link, 410 revoked, 409 already a member or full,
    403 refused by the safety rules."""
    await ctx.limiter.hit(Limit.GROUP_JOINS_PER_ACCOUNT, device.user_id)
    return await groups.join_by_link(ctx, device, request)


@router.get("/groups/{group_id}/devices")
async def devices(group_id: GroupIdPath, ctx: Context, device: AuthDevice) -> GroupDevices:
    return await groups.group_devices(ctx, device, group_id)


@router.post("/groups/{group_id}/messages", status_code=202)
async def send(
    group_id: GroupIdPath, request: GroupSendRequest, ctx: Context, device: AuthDevice
) -> SendAccepted:
    await ctx.limiter.hit(Limit.SENDS_PER_DEVICE, device.device_id)
    return await groups.send_group_message(ctx, device, group_id, request)


@router.post("/to-device", status_code=202)
async def to_device(request: ToDeviceRequest, ctx: Context, device: AuthDevice) -> ToDeviceAccepted:
    await ctx.limiter.hit(Limit.SENDS_PER_DEVICE, device.device_id)
    return await todevice.send_to_device(ctx, device, request)

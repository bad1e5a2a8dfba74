from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from vigil.protocol.wire import ClaimedKeys, ClaimKeysRequest, DeviceList, KeyCounts, UploadKeysRequest
from vigil.server.api.deps import AuthDevice, Context
from vigil.server.ratelimit import Limit
from vigil.server.services import keys

router = APIRouter(prefix="/v1", tags=["keys"])

UsernamePath = Annotated[str, Path(pattern=r"^[a-z0-9_]{3,32}$")]


@router.post("/keys")
async def upload(request: UploadKeysRequest, ctx: Context, device: AuthDevice) -> KeyCounts:
    return await keys.upload_keys(ctx, device, request)


@router.get("/keys/count")
async def count(ctx: Context, device: AuthDevice) -> KeyCounts:
    return await keys.key_counts(ctx, device)


@router.post("/keys/claim")
async def claim(request: ClaimKeysRequest, ctx: Context, device: AuthDevice) -> ClaimedKeys:
    # Per requester, and per target so that many accounts together cannot drain one user's keys.
    await ctx.limiter.hit(Limit.KEY_CLAIMS_PER_REQUESTER, device.user_id)
    await ctx.limiter.hit(Limit.KEY_CLAIMS_PER_TARGET, request.username)
    return await keys.claim_keys(ctx, device, request.username, request.device_ids)


@router.get("/users/{username}/devices")
async def devices(username: UsernamePath, ctx: Context, _device: AuthDevice) -> DeviceList:
    return await keys.device_list(ctx, username)

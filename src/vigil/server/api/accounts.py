from __future__ import annotations

from fastapi import APIRouter, Request

from vigil.protocol.wire import AddDeviceRequest, DeviceCredential, RegisterAccountRequest
from vigil.server.api.deps import AuthDevice, Context, client_address
from vigil.server.ratelimit import Limit
from vigil.server.services import accounts

router = APIRouter(prefix="/v1", tags=["accounts"])


@router.post("/accounts", status_code=201)
async def register(request: RegisterAccountRequest, ctx: Context, http: Request) -> DeviceCredential:
    await ctx.limiter.hit(Limit.REGISTRATIONS_PER_ADDRESS, client_address(http))
    return await accounts.register_account(ctx, request)


@router.post("/devices", status_code=201)
async def add_device(request: AddDeviceRequest, ctx: Context, device: AuthDevice) -> DeviceCredential:
    return await accounts.add_device(ctx, device, request)

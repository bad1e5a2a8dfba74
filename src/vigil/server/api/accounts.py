from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from vigil.protocol.deletion import DeletionReport
from vigil.protocol.wire import AddDeviceRequest, DeviceCredential, RegisterAccountRequest
from vigil.server.api.deps import AuthDevice, Context, client_address
from vigil.server.ratelimit import Limit
from vigil.server.services import accounts, deletion

router = APIRouter(prefix="/v1", tags=["accounts"])


@router.post("/accounts", status_code=201)
async def register(request: RegisterAccountRequest, ctx: Context, http: Request) -> DeviceCredential:
    await ctx.limiter.hit(Limit.REGISTRATIONS_PER_ADDRESS, client_address(http))
    return await accounts.register_account(ctx, request)


@router.post("/devices", status_code=201)
async def add_device(request: AddDeviceRequest, ctx: Context, device: AuthDevice) -> DeviceCredential:
    return await accounts.add_device(ctx, device, request)


@router.delete("/devices/{device_id}")
async def delete_device(
    device_id: Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")], ctx: Context, device: AuthDevice
) -> DeletionReport:
    """Deletes one of the caller's devices; 404 for another account's, 409 for the only one."""
    return await deletion.delete_device(ctx, device, device_id)


@router.delete("/accounts/me")
async def delete_account(ctx: Context, device: AuthDevice) -> DeletionReport:
    """Deletes the caller's account; the answer lists what went and what a case or hold keeps."""
    return await deletion.delete_account(ctx, device)

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from vigil.protocol.wire import MAX_WIRE_INT, AckRequest, FetchResponse, SendAccepted, SendRequest
from vigil.server.api.deps import AuthDevice, Context
from vigil.server.ratelimit import Limit
from vigil.server.services import messaging

router = APIRouter(prefix="/v1/messages", tags=["messages"])


@router.post("", status_code=202)
async def send(request: SendRequest, ctx: Context, device: AuthDevice) -> SendAccepted:
    await ctx.limiter.hit(Limit.SENDS_PER_DEVICE, device.device_id)
    return await messaging.send_message(ctx, device, request)


@router.get("")
async def fetch(
    ctx: Context,
    device: AuthDevice,
    after: Annotated[int, Query(ge=0, le=MAX_WIRE_INT)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> FetchResponse:
    return await messaging.fetch_pending(ctx, device, after=after, limit=limit)


@router.post("/ack")
async def ack(request: AckRequest, ctx: Context, device: AuthDevice) -> dict[str, int]:
    return {"deleted": await messaging.acknowledge(ctx, device, request)}

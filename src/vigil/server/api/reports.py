"""Reports, blocks and account notices."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from vigil.protocol.reports import (
    AppealAccepted,
    AppealRequest,
    BlockList,
    BlockRequest,
    NoticeList,
    ReportAccepted,
    ReportRequest,
)
from vigil.protocol.wire import MAX_WIRE_INT
from vigil.server.api.deps import AppealingDevice, AuthDevice, Context
from vigil.server.ratelimit import Limit
from vigil.server.services import appeals, reports

router = APIRouter(prefix="/v1", tags=["reports"])

UsernamePath = Annotated[str, Path(pattern=r"^[a-z0-9_]{3,32}$")]


@router.post("/reports", status_code=201)
async def submit(request: ReportRequest, ctx: Context, device: AuthDevice) -> ReportAccepted:
    await ctx.limiter.hit(Limit.REPORTS_PER_ACCOUNT, device.user_id)
    return await reports.submit_report(ctx, device, request)


@router.post("/appeals", status_code=201)
async def appeal(request: AppealRequest, ctx: Context, device: AppealingDevice) -> AppealAccepted:
    """Reachable while suspended (as the notices are): appealing the action taken on the account."""
    return await appeals.file_appeal(ctx, device, request)


@router.post("/blocks", status_code=204)
async def block(request: BlockRequest, ctx: Context, device: AuthDevice) -> Response:
    await reports.block_user(ctx, device, request.username)
    return Response(status_code=204)


@router.delete("/blocks/{username}", status_code=204)
async def unblock(username: UsernamePath, ctx: Context, device: AuthDevice) -> Response:
    await reports.unblock_user(ctx, device, username)
    return Response(status_code=204)


@router.get("/blocks")
async def blocks(ctx: Context, device: AuthDevice) -> BlockList:
    return await reports.list_blocks(ctx, device)


@router.get("/notices")
async def notices(
    ctx: Context, device: AppealingDevice, after: Annotated[int, Query(ge=0, le=MAX_WIRE_INT)] = 0
) -> NoticeList:
    """Readable while suspended, as the signed notices are."""
    return await reports.list_notices(ctx, device, after)

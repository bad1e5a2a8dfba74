"""Contact requests, connections, account reports, and signed safety notices."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from vigil.protocol.contacts import (
    AccountReportRequest,
    ContactList,
    ContactRequestCreate,
    ContactRequestList,
    ContactRequestView,
    NoticeKey,
    SignedNoticeList,
)
from vigil.protocol.reports import ReportAccepted
from vigil.protocol.wire import MAX_WIRE_INT
from vigil.server.api.deps import AppealingDevice, AuthDevice, Context
from vigil.server.ratelimit import Limit
from vigil.server.services import contacts, notices
from vigil.server.services.contacts import RequestAnswer

router = APIRouter(prefix="/v1", tags=["contacts"])

RequestIdPath = Annotated[int, Path(ge=1, le=MAX_WIRE_INT)]


@router.post("/contacts/requests", status_code=201)
async def request_contact(
    request: ContactRequestCreate, ctx: Context, device: AuthDevice
) -> ContactRequestView:
    await ctx.limiter.hit(Limit.CONTACT_REQUESTS_PER_ACCOUNT, device.user_id)
    return await contacts.request_contact(ctx, device, request.to)


@router.get("/contacts/requests")
async def list_requests(ctx: Context, device: AuthDevice) -> ContactRequestList:
    return await contacts.list_requests(ctx, device)


@router.post("/contacts/requests/{request_id}/{answer}")
async def answer_request(
    request_id: RequestIdPath, answer: RequestAnswer, ctx: Context, device: AuthDevice
) -> ContactRequestView:
    return await contacts.answer_request(ctx, device, request_id, answer)


@router.get("/contacts")
async def list_contacts(ctx: Context, device: AuthDevice) -> ContactList:
    return await contacts.list_contacts(ctx, device)


@router.post("/contacts/report", status_code=201)
async def report_account(request: AccountReportRequest, ctx: Context, device: AuthDevice) -> ReportAccepted:
    await ctx.limiter.hit(Limit.REPORTS_PER_ACCOUNT, device.user_id)
    return await contacts.report_account(ctx, device, request)


@router.get("/safety/notices")
async def safety_notices(
    ctx: Context, device: AppealingDevice, after: Annotated[int, Query(ge=0, le=MAX_WIRE_INT)] = 0
) -> SignedNoticeList:
    """Readable while suspended: the suspension's notice and the appeal's outcome arrive here."""
    return await notices.list_safety_notices(ctx, device, after)


@router.get("/safety/notice-key")
async def notice_key(ctx: Context) -> NoticeKey:
    return notices.public_notice_key(ctx)

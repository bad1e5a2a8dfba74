"""The audit log page: the chain check and the latest entries (leads and admins)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from vigil.console.deps import Ctx, Lead, Me
from vigil.console.pages import render
from vigil.console.standalone import recent_audit
from vigil.server.services.audit import verify_chain

__all__ = ["router"]

router = APIRouter()


@router.get("/audit")
async def audit_page(request: Request, ctx: Ctx, me: Me, _lead: Lead) -> Response:
    async with ctx.sessions() as session:
        check = await verify_chain(session)
    return render(request, "audit.html", me=me, check=check, entries=await recent_audit(ctx))

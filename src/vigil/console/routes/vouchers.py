"""Opening pending vouchers into image-match cases (leads, with the voucher key configured here)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from vigil.console.deps import CsrfForm, Ctx, Lead
from vigil.console.pages import redirect
from vigil.server.hashlist_keys import load_voucher_keypair
from vigil.server.services import vouchers
from vigil.server.services.audit import append_audit

__all__ = ["router"]

router = APIRouter()


@router.post("/vouchers/open")
async def vouchers_open(request: Request, ctx: Ctx, _form: CsrfForm, lead: Lead) -> Response:
    result = await vouchers.open_pending_vouchers(ctx, load_voucher_keypair(ctx.settings))
    async with ctx.sessions() as session, session.begin():
        await append_audit(
            session,
            now_ms=ctx.clock_ms(),
            actor=lead.actor,
            action="vouchers.opened",
            target="vouchers",
            details={"opened": result.opened, "cases": result.cases, "failed": len(result.failed)},
        )
    return redirect(request, f"/queue?opened={result.opened}")

"""Image-match records on a case page: their pictures, blurred until an audit-logged reveal (opened with
the safety team's voucher key)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from vigil.console.auth import mark_revealed
from vigil.console.deps import CsrfForm, Ctx, Me, field
from vigil.console.pages import redirect
from vigil.server.hashlist_keys import load_voucher_keypair
from vigil.server.services import vouchers

__all__ = ["match_key", "router"]

router = APIRouter()


def match_key(match_id: int) -> int:
    """Image-match reveals share the session's revealed set with evidence items, as negative ids."""
    return -match_id


@router.post("/image-matches/{match_id}/reveal")
async def match_reveal(request: Request, ctx: Ctx, me: Me, form: CsrfForm, match_id: int) -> Response:
    await vouchers.reveal_match_image(ctx, me.reviewer.actor, match_id)
    await mark_revealed(ctx, me, match_key(match_id))
    case_id = field(form, "case")
    return redirect(request, f"/cases/{int(case_id)}#match-{match_id}" if case_id.isdigit() else "/queue")


@router.get("/image-matches/{match_id}/image")
async def match_image(ctx: Ctx, me: Me, match_id: int, blurred: bool = False) -> Response:
    """`blurred=1` keeps it blurred even after a reveal (the CyberTipline pages). Raises ValidationError
    when the safety team's voucher key is not configured here."""
    keys = load_voucher_keypair(ctx.settings)
    revealed = match_key(match_id) in me.revealed and not blurred
    data, mime = await vouchers.case_match_image(ctx, match_id, keys, revealed=revealed)
    return Response(data, media_type=mime, headers={"Content-Disposition": "inline"})

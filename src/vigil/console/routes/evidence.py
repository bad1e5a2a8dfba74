"""Evidence images: blurred and greyscale until a reviewer reveals one, and every reveal is audit-logged."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from vigil.console.auth import mark_revealed
from vigil.console.deps import CsrfForm, Ctx, Me
from vigil.console.pages import redirect
from vigil.server.services import evidence

__all__ = ["router"]

router = APIRouter()


@router.post("/items/{item_id}/reveal")
async def reveal(request: Request, ctx: Ctx, me: Me, _form: CsrfForm, item_id: int) -> Response:
    case_id = await evidence.reveal_image(ctx, me.reviewer.actor, item_id)
    await mark_revealed(ctx, me, item_id)
    return redirect(request, f"/cases/{case_id}#item-{item_id}")


@router.get("/items/{item_id}/image")
async def image(ctx: Ctx, me: Me, item_id: int, blurred: bool = False) -> Response:
    """`blurred=1` keeps it blurred even after a reveal (the CyberTipline pages)."""
    revealed = item_id in me.revealed and not blurred
    data, mime = await evidence.evidence_image(ctx, item_id, revealed=revealed)
    return Response(data, media_type=mime, headers={"Content-Disposition": "inline"})

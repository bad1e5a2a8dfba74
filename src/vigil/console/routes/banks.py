"""Hash banks and the signed hash list: every reviewer may look; leads and admins change them."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from vigil.console.banks import banks_view, parse_kind, parse_threshold, publish_from_console, read_upload
from vigil.console.deps import CsrfForm, Ctx, Lead, Me, choice, field
from vigil.console.pages import redirect, render
from vigil.server.exchanges import Exchange, sync_exchange
from vigil.server.services import hashlist

__all__ = ["router"]

router = APIRouter()


@router.get("/banks")
async def banks_page(request: Request, ctx: Ctx, me: Me, imported: int = -1, published: int = -1) -> Response:
    view = await banks_view(ctx)
    return render(request, "banks.html", me=me, v=view, imported=imported, published=published)


@router.post("/banks")
async def banks_create(request: Request, ctx: Ctx, form: CsrfForm, lead: Lead) -> Response:
    await hashlist.create_bank(
        ctx,
        field(form, "name"),
        kind=parse_kind(field(form, "kind")),
        threshold=parse_threshold(field(form, "threshold")),
        actor=lead.actor,
    )
    return redirect(request, "/banks")


@router.post("/banks/enabled")
async def banks_enabled(request: Request, ctx: Ctx, form: CsrfForm, lead: Lead) -> Response:
    await hashlist.set_bank_enabled(
        ctx, field(form, "name"), field(form, "enabled") == "yes", actor=lead.actor
    )
    return redirect(request, "/banks")


@router.post("/banks/import")
async def banks_import(request: Request, ctx: Ctx, form: CsrfForm, lead: Lead) -> Response:
    name, text = await read_upload(form.get("file"))
    added = await hashlist.import_entries(
        ctx, field(form, "name"), text, field(form, "format"), actor=lead.actor, source=name
    )
    return redirect(request, f"/banks?imported={added}")


@router.post("/banks/fetch")
async def banks_fetch(request: Request, ctx: Ctx, form: CsrfForm, lead: Lead) -> Response:
    exchange = choice(form, "exchange", Exchange)
    result = await sync_exchange(ctx, exchange, actor=lead.actor)
    return redirect(request, f"/banks?imported={result.added}")


@router.post("/hashlist/publish")
async def hashlist_publish(request: Request, ctx: Ctx, _form: CsrfForm, lead: Lead) -> Response:
    out = await publish_from_console(ctx, lead.actor)
    return redirect(request, f"/banks?published={out.version}")

"""Account lookup for investigations (metadata only, audited)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from vigil.console.deps import Ctx, Me
from vigil.console.pages import render
from vigil.server.services import investigation, labels, reporters

__all__ = ["router"]

router = APIRouter()


@router.get("/accounts")
async def account_lookup(request: Request, ctx: Ctx, me: Me, username: str = "") -> Response:
    found = (
        await investigation.look_up(ctx, me.reviewer.actor, username.strip()) if username.strip() else None
    )
    names = set()
    if found is not None:
        names = (
            {found.username}
            | {n for _t, n, _r in found.reports_received}
            | {n for _t, n, _r in found.reports_made}
        )
    return render(
        request,
        "account.html",
        me=me,
        a=found,
        query=username,
        labels=await labels.live_labels(ctx, found.user_id) if found else [],
        bad_faith=await reporters.marked_reporters(ctx, names) if names else set(),
    )

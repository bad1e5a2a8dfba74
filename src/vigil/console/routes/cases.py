"""A case page and what reviewers do on it: actions, notes, assignment, reopening."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from vigil.console.auth import Role, list_reviewers
from vigil.console.deps import CsrfForm, Ctx, Lead, Me, field, require_role
from vigil.console.pages import age, redirect, render
from vigil.console.routes.image_matches import match_key
from vigil.protocol.ids import CaseId
from vigil.server.services import cases, vouchers
from vigil.server.services.cases import CaseAction

__all__ = ["router"]

router = APIRouter()


@router.get("/cases/{case_id}")
async def case_page(request: Request, ctx: Ctx, me: Me, case_id: CaseId) -> Response:
    detail = await cases.case_detail(ctx, me.reviewer.actor, case_id, me.revealed)
    reviewers = await list_reviewers(ctx)
    names = {r.id: r.username for r, _d, _l in reviewers}
    matches = await vouchers.image_matches_for(ctx, me.reviewer.actor, case_id, detail.case.subject)
    return render(
        request,
        "case.html",
        me=me,
        d=detail,
        matches=matches,
        match_revealed={m.id for m in matches if match_key(m.id) in me.revealed},
        names=names,
        assignable=[r for r, disabled, _l in reviewers if not disabled],
        actions=list(CaseAction),
        account_age=age(detail.facts.created_at_ms, ctx.clock_ms()),
    )


@router.post("/cases/{case_id}/action")
async def case_action(request: Request, ctx: Ctx, me: Me, form: CsrfForm, case_id: CaseId) -> Response:
    action = CaseAction(field(form, "action"))
    await cases.apply_action(ctx, me.reviewer.actor, me.reviewer.id, case_id, action, field(form, "note"))
    return redirect(request, f"/cases/{case_id}")


@router.post("/cases/{case_id}/notes")
async def case_note(request: Request, ctx: Ctx, me: Me, form: CsrfForm, case_id: CaseId) -> Response:
    await cases.add_note(ctx, me.reviewer.actor, me.reviewer.id, case_id, field(form, "note"))
    return redirect(request, f"/cases/{case_id}#notes")


@router.post("/cases/{case_id}/assign")
async def case_assign(request: Request, ctx: Ctx, me: Me, form: CsrfForm, case_id: CaseId) -> Response:
    target = field(form, "assignee")
    if target == "me":
        assignee: int | None = me.reviewer.id
    else:
        require_role(me, Role.LEAD)  # leads assign to others and unassign
        assignee = int(target) if target.isdigit() else None
    await cases.assign(ctx, me.reviewer.actor, case_id, assignee)
    return redirect(request, f"/cases/{case_id}")


@router.post("/cases/{case_id}/reopen")
async def case_reopen(request: Request, ctx: Ctx, _form: CsrfForm, lead: Lead, case_id: CaseId) -> Response:
    await cases.reopen(ctx, lead.actor, case_id)
    return redirect(request, f"/cases/{case_id}")

"""Reviewer accounts (admins only)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from vigil.console.auth import Role, create_reviewer, list_reviewers, set_disabled, set_queues
from vigil.console.deps import Admin, CsrfForm, Ctx, Me, choice, field
from vigil.console.pages import redirect, render
from vigil.safety.routing import QueueName

__all__ = ["router"]

router = APIRouter()


@router.get("/admin/reviewers")
async def reviewers_page(request: Request, ctx: Ctx, me: Me, _admin: Admin) -> Response:
    return render(
        request,
        "reviewers.html",
        me=me,
        reviewers=await list_reviewers(ctx),
        roles=list(Role),
        queues=list(QueueName),
    )


@router.post("/admin/reviewers")
async def reviewers_create(request: Request, ctx: Ctx, form: CsrfForm, admin: Admin) -> Response:
    await create_reviewer(
        ctx, field(form, "username"), str(form.get("password") or ""), choice(form, "role", Role), admin.actor
    )
    return redirect(request, "/admin/reviewers")


@router.post("/admin/reviewers/{reviewer_id}/disabled")
async def reviewers_disable(
    request: Request, ctx: Ctx, form: CsrfForm, admin: Admin, reviewer_id: int
) -> Response:
    await set_disabled(ctx, admin, reviewer_id, field(form, "disabled") == "yes")
    return redirect(request, "/admin/reviewers")


@router.post("/admin/reviewers/{reviewer_id}/queues")
async def reviewers_queues(
    request: Request, ctx: Ctx, form: CsrfForm, admin: Admin, reviewer_id: int
) -> Response:
    await set_queues(ctx, admin, reviewer_id, [str(q) for q in form.getlist("queue")])
    return redirect(request, "/admin/reviewers")

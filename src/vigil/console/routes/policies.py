"""The policy list decisions cite (admins manage it)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from vigil.console.deps import Admin, CsrfForm, Ctx, Me, field
from vigil.console.pages import redirect, render
from vigil.server.services import policies

__all__ = ["router"]

router = APIRouter()


@router.get("/admin/policies")
async def policies_page(request: Request, ctx: Ctx, me: Me, _admin: Admin) -> Response:
    return render(request, "policies.html", me=me, policies=await policies.list_policies(ctx))


@router.post("/admin/policies")
async def policies_add(request: Request, ctx: Ctx, form: CsrfForm, admin: Admin) -> Response:
    await policies.add_policy(ctx, admin.actor, field(form, "code"), field(form, "title"))
    return redirect(request, "/admin/policies")


@router.post("/admin/policies/{policy_id}/active")
async def policies_active(
    request: Request, ctx: Ctx, form: CsrfForm, admin: Admin, policy_id: int
) -> Response:
    await policies.set_active(ctx, admin.actor, policy_id, field(form, "active") == "yes")
    return redirect(request, "/admin/policies")

"""The case queue, with its filters."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from vigil.console.auth import Role, list_reviewers
from vigil.console.deps import Ctx, Me
from vigil.console.pages import render
from vigil.errors import ValidationError
from vigil.protocol.reports import ReportReason
from vigil.server.context import ServerContext
from vigil.server.db.cases import OPEN_STATES, QueueFilter
from vigil.server.hashlist_keys import load_voucher_keypair
from vigil.server.services import cases
from vigil.server.services.cases import CaseState

__all__ = ["router"]

router = APIRouter()


def _has_voucher_key(ctx: ServerContext) -> bool:
    try:
        load_voucher_keypair(ctx.settings)
    except ValidationError:
        return False
    return True


@router.get("/queue")
async def queue_page(
    request: Request,
    ctx: Ctx,
    me: Me,
    state: str = "open",
    reason: str = "",
    priority: str = "",
    verified: str = "",
    mine: str = "",
    opened: int = -1,
) -> Response:
    states: tuple[str, ...] = (
        OPEN_STATES
        if state in ("", "open")
        else (tuple(s.value for s in CaseState) if state == "all" else (CaseState(state).value,))
    )
    where = QueueFilter(
        states=states,
        reason=ReportReason(reason).value if reason else None,
        priority_at_least={"urgent": 90, "high": 70, "normal": 40}.get(priority),
        verified={"yes": True, "no": False}.get(verified),
        assignee_id=me.reviewer.id if mine else None,
    )
    rows = await cases.queue(ctx, where)
    reviewers = {r.id: r.username for r, _d, _l in await list_reviewers(ctx)}
    return render(
        request,
        "queue.html",
        me=me,
        rows=rows,
        opened=opened,
        can_open_vouchers=me.reviewer.role.at_least(Role.LEAD) and _has_voucher_key(ctx),
        reviewers=reviewers,
        reasons=list(ReportReason),
        states=list(CaseState),
        current={
            "state": state,
            "reason": reason,
            "priority": priority,
            "verified": verified,
            "mine": mine,
        },
    )

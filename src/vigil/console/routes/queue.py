"""The case queues, with their filters, paging and sorting, and "claim next"."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from vigil.console.auth import Role, list_reviewers
from vigil.console.deps import CsrfForm, Ctx, Me
from vigil.console.pages import redirect, render
from vigil.errors import PermissionDenied, ValidationError
from vigil.protocol.reports import ReportReason
from vigil.safety.routing import QueueName
from vigil.server.context import ServerContext
from vigil.server.db.cases import OPEN_STATES, QueueFilter
from vigil.server.hashlist_keys import load_voucher_keypair
from vigil.server.services import cases
from vigil.server.services.cases import CaseState

__all__ = ["PAGE_SIZE", "router"]

router = APIRouter()

PAGE_SIZE = 50
SORTS = ("urgency", "oldest", "newest")


def _has_voucher_key(ctx: ServerContext) -> bool:
    try:
        load_voucher_keypair(ctx.settings)
    except ValidationError:
        return False
    return True


def workable_queue(me_queues: list[QueueName], name: str) -> QueueName:
    """Raises ValidationError for an unknown queue, PermissionDenied for one the reviewer may not work."""
    if name not in set(QueueName):
        raise ValidationError(f"no queue named {name[:40]!r}")
    queue = QueueName(name)
    if queue not in me_queues:
        raise PermissionDenied(f"you are not on the {queue.label} queue")
    return queue


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
    queue: str = "",
    sort: str = "urgency",
    page: int = 1,
    empty: str = "",
) -> Response:
    workable = me.reviewer.workable_queues
    chosen = workable_queue(workable, queue) if queue else None
    if sort not in SORTS:
        raise ValidationError(f"sort is one of {', '.join(SORTS)}")
    page = max(1, min(page, 10_000))
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
        queues=(chosen.value,) if chosen else tuple(q.value for q in workable),
        sort=sort,
        offset=(page - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    rows = await cases.queue(ctx, where)
    total = await cases.queue_count(ctx, where)
    depth = {q: await cases.queue_count(ctx, QueueFilter(queues=(q.value,))) for q in workable}
    reviewers = {r.id: r.username for r, _d, _l in await list_reviewers(ctx)}
    return render(
        request,
        "queue.html",
        me=me,
        rows=rows,
        total=total,
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        opened=opened,
        can_open_vouchers=me.reviewer.role.at_least(Role.LEAD) and _has_voucher_key(ctx),
        reviewers=reviewers,
        reasons=list(ReportReason),
        states=list(CaseState),
        queues=workable,
        depth=depth,
        chosen=chosen,
        sorts=SORTS,
        empty=empty,
        current={
            "state": state,
            "reason": reason,
            "priority": priority,
            "verified": verified,
            "mine": mine,
            "queue": queue,
            "sort": sort,
        },
    )


@router.post("/queue/{name}/claim")
async def claim_next(request: Request, ctx: Ctx, me: Me, _form: CsrfForm, name: str) -> Response:
    queue = workable_queue(me.reviewer.workable_queues, name)
    case_id = await cases.claim_next(ctx, me.reviewer.actor, me.reviewer.id, queue)
    if case_id is None:
        return redirect(request, f"/queue?queue={queue.value}&empty=1")
    return redirect(request, f"/cases/{case_id}")

"""A case page and what reviewers do on it: actions, notes, assignment, reopening, and marking a reporter
as acting in bad faith (leads clear the mark)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from vigil.console.auth import Role, SignedIn, list_reviewers
from vigil.console.cybertip import STATE_BADGES, can_file
from vigil.console.deps import CsrfForm, Ctx, Lead, Me, choice, field, form_id, require_role
from vigil.console.pages import age, redirect, render, set_cookie
from vigil.console.routes.image_matches import match_key
from vigil.errors import ConflictError, PermissionDenied, ValidationError
from vigil.protocol.ids import CaseId
from vigil.protocol.reports import ReportReason
from vigil.protocol.wire import AgeBand
from vigil.safety.routing import (
    MINOR_REPORT_BOUND_MS,
    QueueName,
    reviewed_within_bound,
    under_minor_report_bound,
)
from vigil.server.context import ServerContext
from vigil.server.services import (
    appeals,
    cases,
    cybertip_filing,
    labels,
    policies,
    report_dismissals,
    reporters,
    vouchers,
    wellness,
)
from vigil.server.services.cases import DECISIONS, SEVERE, CaseAction

__all__ = ["router"]

router = APIRouter()


async def _may_work_case(ctx: ServerContext, me: SignedIn, case_id: int) -> cases.CaseSummary:
    """The case, if the reviewer is on its queue. Raises NotFoundError, PermissionDenied."""
    case = await cases.case_summary(ctx, case_id)
    if not me.reviewer.may_work(QueueName(case.queue)):
        raise PermissionDenied(f"you are not on the {case.queue_label} queue")
    return case


async def _holding(ctx: ServerContext, me: SignedIn, case_id: int) -> cases.CaseSummary:
    """Raises ConflictError when another reviewer holds a live claim on the case (a lead may act)."""
    case = await _may_work_case(ctx, me, case_id)
    holder = case.claimed_by(ctx.clock_ms())
    if holder not in (None, me.reviewer.id) and not me.reviewer.role.at_least(Role.LEAD):
        raise ConflictError("another reviewer has claimed this case")
    return case


@router.get("/cases/{case_id}")
async def case_page(request: Request, ctx: Ctx, me: Me, case_id: CaseId) -> Response:
    await _may_work_case(ctx, me, case_id)
    detail = await cases.case_detail(ctx, me.reviewer.actor, case_id, me.revealed)
    reviewers = await list_reviewers(ctx)
    names = {r.id: r.username for r, _d, _l in reviewers}
    matches = await vouchers.image_matches_for(ctx, me.reviewer.actor, case_id, detail.case.subject)
    filings = await cybertip_filing.list_filings(ctx, case_id=case_id)
    lead = me.reviewer.role.at_least(Role.LEAD)
    bad_faith = await reporters.marked_reporters(ctx, {r.reporter for r in detail.reports})
    every_policy = await policies.list_policies(ctx)
    account_labels = await labels.live_labels(ctx, await cases.subject_id(ctx, case_id))
    active = [p for p in every_policy if p.active]
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
        filings=filings,
        state_badges=STATE_BADGES,
        meanings=cybertip_filing.MEANING,
        can_file=lead and await can_file(ctx, case_id),
        bad_faith=bad_faith,
        policies=active,
        labels=account_labels,
        blur=blur_level(request),
        exposures=await wellness.exposures_today(ctx, me.reviewer.actor),
        exposure_limit=ctx.settings.console_exposure_soft_limit,
        decision_policy=next((p for p in every_policy if p.id == detail.case.decision_policy_id), None),
        last_action=detail.facts.actions[-1][1] if detail.facts.actions else None,
        appeal=await appeals.appeal_of_case(ctx, case_id),
        minors_bound=_minors_bound(detail, ctx.clock_ms()),
    )


def _minors_bound(detail: cases.CaseDetail, now_ms: int) -> tuple[int, bool | None] | None:
    """For a case holding a minor's grooming or sextortion report: the bound's deadline (from the
    earliest such report) and whether it was met (None: not yet known)."""
    covered = [
        r.created_at_ms
        for r in detail.reports
        if under_minor_report_bound(ReportReason(r.reason), AgeBand(r.reporter_age_band))
    ]
    if not covered:
        return None
    first = min(covered)
    met = reviewed_within_bound(first, detail.case.first_action_at_ms, now_ms)
    return first + MINOR_REPORT_BOUND_MS, met


@router.post("/cases/{case_id}/action")
async def case_action(request: Request, ctx: Ctx, me: Me, form: CsrfForm, case_id: CaseId) -> Response:
    action = choice(form, "action", CaseAction)
    case = await _holding(ctx, me, case_id)
    chosen = field(form, "policy")
    policy_id = form_id(chosen, "policy") if chosen else None
    note, then_next = field(form, "note"), field(form, "next") == "1"
    if action in SEVERE and field(form, "confirm") != "yes":
        policy = next(
            (p for p in await policies.list_policies(ctx, active_only=True) if p.id == policy_id), None
        )
        if policy is None:
            raise ValidationError("policy: every decision cites a policy; choose one")
        return render(
            request,
            "confirm_action.html",
            me=me,
            case=case,
            action=action.value,
            policy=policy,
            note=note,
            next="1" if then_next else "",
        )
    await cases.apply_action(
        ctx, me.reviewer.actor, me.reviewer.id, case_id, action, note, policy_id=policy_id
    )
    if then_next and action in DECISIONS:
        queue = QueueName(case.queue)
        following = await cases.claim_next(ctx, me.reviewer.actor, me.reviewer.id, queue)
        if following is None:
            return redirect(request, f"/queue?queue={queue.value}&empty=1")
        return redirect(request, f"/cases/{following}")
    return redirect(request, f"/cases/{case_id}")


@router.post("/cases/{case_id}/reports/dismiss")
async def case_dismiss_reports(
    request: Request, ctx: Ctx, me: Me, form: CsrfForm, case_id: CaseId
) -> Response:
    """Dismisses several duplicate reports about one item in one action, citing a policy."""
    await _holding(ctx, me, case_id)
    chosen = [form_id(value, "report") for value in form.getlist("report") if isinstance(value, str)]
    policy = field(form, "policy")
    policy_id = form_id(policy, "policy") if policy else None
    await report_dismissals.dismiss_duplicate_reports(
        ctx,
        me.reviewer.actor,
        me.reviewer.id,
        case_id,
        chosen,
        policy_id,
    )
    return redirect(request, f"/cases/{case_id}")


@router.post("/cases/{case_id}/appeal")
async def case_appeal(request: Request, ctx: Ctx, me: Me, form: CsrfForm, case_id: CaseId) -> Response:
    await _holding(ctx, me, case_id)
    outcome = field(form, "outcome")
    if outcome not in set(appeals.AppealOutcome):
        raise ValidationError("outcome: uphold or overturn")
    chosen = field(form, "policy")
    policy_id = form_id(chosen, "policy") if chosen else None
    await appeals.decide_appeal(
        ctx,
        me.reviewer.actor,
        me.reviewer.id,
        case_id,
        appeals.AppealOutcome(outcome),
        policy_id,
    )
    return redirect(request, f"/cases/{case_id}")


@router.post("/cases/{case_id}/merge")
async def case_merge(request: Request, ctx: Ctx, form: CsrfForm, lead: Lead, case_id: CaseId) -> Response:
    """Leads merge this case's reports into another open case about the same account."""
    target = form_id(field(form, "into").lstrip("#"), "into")
    await cases.merge_case(ctx, lead.actor, case_id, target)
    return redirect(request, f"/cases/{target}")


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
        assignee = None if target in ("none", "") else form_id(target, "assignee")
    await cases.assign(ctx, me.reviewer.actor, case_id, assignee)
    return redirect(request, f"/cases/{case_id}")


@router.post("/cases/{case_id}/release")
async def case_release(request: Request, ctx: Ctx, me: Me, _form: CsrfForm, case_id: CaseId) -> Response:
    await _may_work_case(ctx, me, case_id)
    lead = me.reviewer.role.at_least(Role.LEAD)
    await cases.release(ctx, me.reviewer.actor, me.reviewer.id, case_id, lead=lead)
    return redirect(request, f"/cases/{case_id}")


@router.post("/cases/{case_id}/hold")
async def case_hold(request: Request, ctx: Ctx, me: Me, _form: CsrfForm, case_id: CaseId) -> Response:
    await _holding(ctx, me, case_id)
    await cases.hold(ctx, me.reviewer.actor, case_id)
    return redirect(request, f"/cases/{case_id}")


@router.post("/cases/{case_id}/labels")
async def case_label(request: Request, ctx: Ctx, me: Me, form: CsrfForm, case_id: CaseId) -> Response:
    await _may_work_case(ctx, me, case_id)
    days = field(form, "days")
    if days and not days.isdigit():
        raise ValidationError("label: expiry is a number of days")
    await labels.add_label(
        ctx, me.reviewer.actor, me.reviewer.id, case_id, field(form, "label"), int(days) if days else None
    )
    return redirect(request, f"/cases/{case_id}#labels")


@router.post("/cases/{case_id}/labels/{label_id}/remove")
async def case_unlabel(
    request: Request, ctx: Ctx, me: Me, _form: CsrfForm, case_id: CaseId, label_id: int
) -> Response:
    await _may_work_case(ctx, me, case_id)
    await labels.remove_label(ctx, me.reviewer.actor, case_id, label_id)
    return redirect(request, f"/cases/{case_id}#labels")


BLUR_COOKIE = "vigil_blur"
DEFAULT_BLUR = 2


def blur_level(request: Request) -> int:
    """How strongly revealed images stay blurred for this reviewer: 0 (greyscale only) to 3."""
    value = request.cookies.get(BLUR_COOKIE, "")
    return int(value) if value in ("0", "1", "2", "3") else DEFAULT_BLUR


@router.post("/cases/{case_id}/blur")
async def case_blur(request: Request, _me: Me, form: CsrfForm, case_id: CaseId) -> Response:
    level = field(form, "blur")
    if level not in ("0", "1", "2", "3"):
        raise ValidationError("blur: 0 to 3")
    response = redirect(request, f"/cases/{case_id}")
    set_cookie(response, request, BLUR_COOKIE, level, 365 * 86_400)
    return response


@router.post("/cases/{case_id}/reopen")
async def case_reopen(request: Request, ctx: Ctx, _form: CsrfForm, lead: Lead, case_id: CaseId) -> Response:
    await cases.reopen(ctx, lead.actor, case_id)
    return redirect(request, f"/cases/{case_id}")


Reporter = Annotated[str, Path(pattern=r"^[a-z0-9_]{3,32}$")]


@router.post("/cases/{case_id}/reporters/{username}/bad-faith")
async def reporter_bad_faith(
    request: Request, ctx: Ctx, me: Me, form: CsrfForm, case_id: CaseId, username: Reporter
) -> Response:
    await reporters.mark_bad_faith(
        ctx, me.reviewer.actor, me.reviewer.id, case_id, username, field(form, "reason")
    )
    return redirect(request, f"/cases/{case_id}")


@router.post("/cases/{case_id}/reporters/{username}/bad-faith/clear")
async def reporter_bad_faith_clear(
    request: Request, ctx: Ctx, _form: CsrfForm, lead: Lead, case_id: CaseId, username: Reporter
) -> Response:
    await reporters.clear_bad_faith(ctx, lead.actor, case_id, username)
    return redirect(request, f"/cases/{case_id}")

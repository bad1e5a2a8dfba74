"""Reporting a case to the NCMEC CyberTipline (leads and admins), the list of CyberTipline reports and
the preservation holds (leads look; an admin releases a hold after its date).

Filing is three steps: the form (incident type, a classification and annotations per file), the preview
(the documents exactly as they will be sent, images blurred) and the submission. The filing service does
the work and writes the audit log; NCMEC's refusals are shown with NCMEC's code and description only.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from vigil.console.cybertip import ANNOTATIONS, CLASSIFICATIONS, Choices, parse_choices
from vigil.console.deps import Admin, CsrfForm, Ctx, Lead, Me
from vigil.console.pages import redirect, render
from vigil.protocol.ids import CaseId
from vigil.safety.ncmec import IncidentType
from vigil.server.cybertipline import CyberTiplineError
from vigil.server.services import cybertip_filing

__all__ = ["STATE_BADGES", "router"]

router = APIRouter()

STATE_BADGES = {"finished": "ok", "failed": "bad", "outcome_unknown": "bad", "retracted": "claim"}


@router.get("/cases/{case_id}/cybertip")
async def filing_form(request: Request, ctx: Ctx, me: Me, lead: Lead, case_id: CaseId) -> Response:
    case = await cybertip_filing.reportable_case(ctx, lead.actor, case_id)
    keys = [f.key for f in case.files]
    try:
        chosen = parse_choices(request.query_params, keys) if request.query_params else None
    except ValueError:
        chosen = None
    return render(
        request,
        "cybertip_form.html",
        me=me,
        case=case,
        files=case.files,
        incident_types=list(IncidentType),
        classifications=CLASSIFICATIONS,
        annotations=ANNOTATIONS,
        chosen=chosen or Choices(IncidentType.CHILD_PORNOGRAPHY),
    )


@router.post("/cases/{case_id}/cybertip/preview")
async def filing_preview(request: Request, ctx: Ctx, me: Me, form: CsrfForm, lead: Lead, case_id: CaseId) -> Response:
    case = await cybertip_filing.reportable_case(ctx, lead.actor, case_id)
    choices = parse_choices(form, [f.key for f in case.files])
    draft = await cybertip_filing.prepare_filing(ctx, lead.actor, case_id, choices)
    return render(
        request,
        "cybertip_preview.html",
        me=me,
        case=case,
        draft=draft,
        carried=choices.carried(),
        endpoint=ctx.settings.cybertipline_url,
    )


@router.post("/cases/{case_id}/cybertip")
async def filing_submit(request: Request, ctx: Ctx, me: Me, form: CsrfForm, lead: Lead, case_id: CaseId) -> Response:
    case = await cybertip_filing.reportable_case(ctx, lead.actor, case_id)
    choices = parse_choices(form, [f.key for f in case.files])
    try:
        filing = await cybertip_filing.file_report(ctx, lead.actor, case_id, choices)
    except CyberTiplineError as error:
        return render(
            request,
            "error.html",
            502,
            me=me,
            title="NCMEC refused the report",
            message=_refusal(error),
        )
    return redirect(request, f"/cybertip/reports#filing-{filing.id}")


def _refusal(error: CyberTiplineError) -> str:
    """NCMEC's code and description, never anything of the report."""
    code = getattr(error, "ncmec_code", None)
    description = getattr(error, "ncmec_description", None) or ""
    return f"NCMEC code {code}: {description}".strip() if code is not None else error.detail


@router.get("/cybertip/reports")
async def reports_page(request: Request, ctx: Ctx, me: Me, _lead: Lead) -> Response:
    filings = await cybertip_filing.list_filings(ctx)
    return render(
        request,
        "cybertip_reports.html",
        me=me,
        filings=filings,
        state_badges=STATE_BADGES,
        endpoint=ctx.settings.cybertipline_url,
        problem=None,
    )


@router.get("/holds")
async def holds_page(request: Request, ctx: Ctx, me: Me, _lead: Lead) -> Response:
    holds = await cybertip_filing.list_holds(ctx)
    return render(
        request, "holds.html", me=me, holds=holds, can_release=me.reviewer.role.rank >= 3
    )


@router.post("/holds/{hold_id}/release")
async def hold_release(request: Request, ctx: Ctx, _form: CsrfForm, admin: Admin, hold_id: int) -> Response:
    await cybertip_filing.release_hold(ctx, admin.actor, hold_id)
    return redirect(request, "/holds")

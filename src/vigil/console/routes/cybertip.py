"""Reporting a case to the NCMEC CyberTipline (leads and admins), the list of CyberTipline reports and
the preservation holds (leads and admins look; only an admin releases a hold, after its date).

Filing is three steps: the form (incident type, a classification and annotations per file), the preview
(the documents exactly as they will be sent, images blurred) and the submission. The filing service
(`cybertip_filing`) builds the documents, talks to NCMEC and writes the audit log; the console shows
NCMEC's refusals by NCMEC's code and description only.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from vigil.console.auth import Role
from vigil.console.cybertip import (
    ANNOTATIONS,
    CLASSIFICATIONS,
    STATE_BADGES,
    Choices,
    image_path,
    parse_choices,
    reportable_files,
)
from vigil.console.deps import CsrfForm, Ctx, Lead, Me
from vigil.console.pages import redirect, render
from vigil.errors import ValidationError
from vigil.protocol.ids import CaseId
from vigil.safety.ncmec import IncidentType
from vigil.server.cybertipline import CyberTiplineError
from vigil.server.services import cybertip_filing
from vigil.server.services.cybertip_filing import FilingRecord

__all__ = ["router"]

router = APIRouter()


@router.get("/cases/{case_id}/cybertip")
async def filing_form(request: Request, ctx: Ctx, me: Me, _lead: Lead, case_id: CaseId) -> Response:
    subject, files = await reportable_files(ctx, case_id)
    chosen = Choices(IncidentType.CHILD_PORNOGRAPHY)
    if "incident_type" in request.query_params:  # back from the preview with "Change"
        try:
            chosen = parse_choices(request.query_params, [f.key for f in files])
        except ValidationError:
            pass
    return render(
        request,
        "cybertip_form.html",
        me=me,
        case_id=case_id,
        subject=subject,
        files=files,
        image_path=image_path,
        incident_types=list(IncidentType),
        classifications=CLASSIFICATIONS,
        annotations=ANNOTATIONS,
        chosen=chosen,
    )


@router.post("/cases/{case_id}/cybertip/preview")
async def filing_preview(
    request: Request, ctx: Ctx, me: Me, form: CsrfForm, lead: Lead, case_id: CaseId
) -> Response:
    _subject, files = await reportable_files(ctx, case_id)
    choices = parse_choices(form, [f.key for f in files])
    preview = await cybertip_filing.prepare_filing(
        ctx,
        case_id,
        incident_type=choices.incident_type,
        classifications=choices.classifications(),
        actor=lead.actor,
    )
    return render(
        request,
        "cybertip_preview.html",
        me=me,
        p=preview,
        image_path=image_path,
        carried=choices.carried(),
    )


@router.post("/cases/{case_id}/cybertip")
async def filing_submit(
    request: Request, ctx: Ctx, me: Me, form: CsrfForm, lead: Lead, case_id: CaseId
) -> Response:
    _subject, files = await reportable_files(ctx, case_id)
    choices = parse_choices(form, [f.key for f in files])
    try:
        filing = await cybertip_filing.file_report(
            ctx,
            case_id,
            incident_type=choices.incident_type,
            classifications=choices.classifications(),
            actor=lead.actor,
        )
    except CyberTiplineError as error:
        # The service's reviewer-facing form: NCMEC's code and its documented meaning, the Request-ID and
        # what became of the filing (failed, or kept for recovery); never NCMEC's free text.
        return render(
            request,
            "error.html",
            502,
            me=me,
            title="The CyberTipline did not accept the report",
            message=error.detail,
        )
    return redirect(request, f"/cybertip/reports#filing-{filing.id}")


@router.get("/cybertip/reports")
async def reports_page(request: Request, ctx: Ctx, me: Me, _lead: Lead) -> Response:
    return render(
        request,
        "cybertip_reports.html",
        me=me,
        filings=await cybertip_filing.list_filings(ctx),
        state_badges=STATE_BADGES,
        meanings=cybertip_filing.MEANING,
    )


@router.get("/holds")
async def holds_page(request: Request, ctx: Ctx, me: Me, _lead: Lead) -> Response:
    filings: dict[int, FilingRecord] = {f.id: f for f in await cybertip_filing.list_filings(ctx)}
    return render(
        request,
        "holds.html",
        me=me,
        holds=await cybertip_filing.list_holds(ctx),
        filings=filings,
        can_release=me.reviewer.role.at_least(Role.ADMIN),
    )


@router.post("/holds/{hold_id}/release")
async def hold_release(request: Request, ctx: Ctx, me: Me, _form: CsrfForm, hold_id: int) -> Response:
    # Not the Admin dependency: the service records a lead's refused attempt in the audit log.
    await cybertip_filing.release_hold(
        ctx, hold_id, actor=me.reviewer.actor, is_admin=me.reviewer.role.at_least(Role.ADMIN)
    )
    return redirect(request, "/holds")

"""Bulk dismissal of duplicate reports about one item: a reviewer picks several reports in a case that
are about the same reported message (or, for account reports, the same account) and dismisses them in one
action citing a policy. Each report is audited on its own; the case stays open for its other reports, and
is closed as dismissed (a decision, counted as such) when no report is left standing."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from vigil.errors import ConflictError, NotFoundError, ValidationError
from vigil.server.context import ServerContext
from vigil.server.db.cases import CaseRepository, ReportItemRow, ReportRow
from vigil.server.db.policies import PolicyRepository
from vigil.server.services.audit import append_audit
from vigil.server.services.cases import CaseAction, CaseState, apply_action_in

__all__ = ["MAX_REPORTS", "DismissalOutcome", "dismiss_duplicate_reports", "item_key"]

MAX_REPORTS = 500  # one action; a case with more duplicates is dismissed in several


@dataclass(frozen=True, slots=True)
class DismissalOutcome:
    dismissed: int
    case_closed: bool  # no report was left standing, so the case itself was dismissed


def item_key(report: ReportRow, items: Collection[ReportItemRow]) -> str:
    """What a report is about: its reported message (sender and the sender's message id), or the
    account itself for a report without messages."""
    primary = next((i for i in items if i.report_id == report.id and i.position == 0), None)
    if primary is None:
        return f"account:{report.reported_user_id}"
    return f"message:{primary.sender or '?'}:{primary.message_id}"


async def dismiss_duplicate_reports(
    ctx: ServerContext,
    actor: str,
    reviewer_id: int,
    case_id: int,
    report_ids: Collection[int],
    policy_id: int | None,
) -> DismissalOutcome:
    """Dismisses the chosen reports of an open case in one transaction. Raises NotFoundError (no such
    case), ValidationError (no report chosen, too many, a report of another case or already dismissed,
    reports about different items, no active policy), ConflictError (the case is closed)."""
    chosen = set(report_ids)
    if not chosen:
        raise ValidationError("report: choose the duplicate reports to dismiss")
    if len(chosen) > MAX_REPORTS:
        raise ValidationError(f"report: at most {MAX_REPORTS} reports in one action")
    now = ctx.clock_ms()
    async with ctx.sessions() as session, session.begin():
        cases = CaseRepository(session)
        case = await cases.get(case_id)
        if case is None:
            raise NotFoundError("no such case")
        if case.state in (CaseState.ACTIONED, CaseState.DISMISSED):
            raise ConflictError("the case is closed; a lead can reopen it")
        policy = None if policy_id is None else await PolicyRepository(session).get(policy_id)
        if policy is None or not policy.active:
            raise ValidationError("policy: every decision cites a policy; choose one")
        reports = [report for report, _reporter in await cases.reports_of(case_id)]
        picked = [r for r in reports if r.id in chosen]
        if len(picked) != len(chosen):
            raise ValidationError("report: not a report of this case")
        if any(r.dismissed_at_ms is not None for r in picked):
            raise ValidationError("report: already dismissed")
        items = await cases.items_of([r.id for r in picked])
        about = {item_key(r, items) for r in picked}
        if len(about) != 1:
            raise ValidationError(
                "report: the chosen reports are about different items; dismiss duplicates only"
            )
        for report in sorted(picked, key=lambda r: r.id):
            report.dismissed_at_ms, report.dismissed_by, report.dismissed_policy_id = (
                now,
                reviewer_id,
                policy.id,
            )
            await append_audit(
                session,
                now_ms=now,
                actor=actor,
                action="report.dismissed",
                target=f"case:{case_id}",
                details={"report": report.id, "policy": policy.code, "duplicates": len(picked)},
            )
        case.updated_at_ms = now
        if case.first_action_at_ms is None:
            case.first_action_at_ms = now
        standing = [r for r in reports if r.dismissed_at_ms is None]
        if not standing:
            await apply_action_in(
                ctx, session, actor, reviewer_id, case_id, CaseAction.DISMISS, policy_id=policy.id
            )
        return DismissalOutcome(dismissed=len(picked), case_closed=not standing)

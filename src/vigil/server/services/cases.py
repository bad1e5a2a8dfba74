"""Cases and the actions reviewers take on them (DESIGN.md §3 "Review"). Every evidence view and every
action appends to the audit log in the same transaction as the change it records.

The caller (the console) has already authenticated and authorised the reviewer; `actor` names them in
the audit log.
"""

from __future__ import annotations

import enum
import json
import secrets
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from vigil.errors import ConflictError, NotFoundError, PermissionDenied, StorageError, ValidationError
from vigil.protocol.reports import ReportReason
from vigil.safety.policy import Standing
from vigil.safety.reports import priority_label
from vigil.safety.routing import QueueName, more_urgent_queue
from vigil.safety.strikes import Sanction, escalate, parse_thresholds
from vigil.server.context import ServerContext
from vigil.server.db.accounts import AccountActionRow, StandingRepository, UserRepository, UserRow
from vigil.server.db.audit import AuditRow
from vigil.server.db.cases import (
    OPEN_STATES,
    AccountFacts,
    CaseNoteRow,
    CaseRepository,
    CaseRow,
    QueueFilter,
    ReportRepository,
    ReportRow,
)
from vigil.server.db.cybertip import CyberTipFilingRepository
from vigil.server.db.hashlists import VoucherRepository
from vigil.server.db.policies import PolicyRepository
from vigil.server.db.reviewers import ReviewerRepository
from vigil.server.services.accounts import AuthenticatedDevice
from vigil.server.services.audit import append_audit, entries_for
from vigil.server.services.case_evidence import (
    EvidenceKind,
    preserved_summary,
    read_case_evidence,
    store_case_evidence,
)
from vigil.server.services.evidence import evidence_box, item_content_context
from vigil.server.services.notices import ACTION_TEXTS, issue_action_notice

__all__ = [
    "DECISIONS",
    "SEVERE",
    "CaseAction",
    "CaseDetail",
    "CaseState",
    "CaseSummary",
    "EvidenceItem",
    "ReportView",
    "add_note",
    "apply_action",
    "apply_action_in",
    "assign",
    "case_detail",
    "case_summary",
    "claim_next",
    "file_report",
    "hold",
    "open_or_join_case",
    "queue",
    "queue_count",
    "release",
    "reopen",
    "subject_id",
]

_DAY_MS = 24 * 3600 * 1000
_MERGE_LEASE_MS = 60_000  # only held inside the merge's transaction; bounds a merge that died holding it


class CaseState(enum.StrEnum):
    OPEN = "open"
    IN_REVIEW = "in_review"
    ESCALATED = "escalated"
    ON_HOLD = "on_hold"
    ACTIONED = "actioned"
    DISMISSED = "dismissed"


CLOSED_STATES = frozenset({CaseState.ACTIONED, CaseState.DISMISSED})


class CaseAction(enum.StrEnum):
    """What a reviewer does to a case; `DECISIONS` are the ones that cite a policy."""

    WARN = "warn"
    RESTRICT = "restrict"
    SUSPEND = "suspend"
    LIFT = "lift"
    DISMISS = "dismiss"
    ESCALATE = "escalate"  # to a lead; NCMEC reports are filed from the case's CyberTipline form


DECISIONS = frozenset({CaseAction.WARN, CaseAction.RESTRICT, CaseAction.SUSPEND, CaseAction.DISMISS})
SEVERE = frozenset({CaseAction.SUSPEND})  # the console asks for a confirmation first


@dataclass(frozen=True, slots=True)
class CaseSummary:
    id: int
    subject: str
    state: str
    priority: int
    priority_label: str
    reason: str
    reason_label: str
    verified: bool
    reports: int
    assignee_id: int | None
    updated_at_ms: int
    queue: str
    queue_label: str
    created_at_ms: int
    claim_expires_at_ms: int | None
    sla_ms: int
    decided_at_ms: int | None
    decision_policy_id: int | None
    first_action_at_ms: int | None = None

    def age_ms(self, now_ms: int) -> int:
        return max(0, (self.decided_at_ms or now_ms) - self.created_at_ms)

    def sla_breached(self, now_ms: int) -> bool:
        return self.age_ms(now_ms) > self.sla_ms

    def claimed_by(self, now_ms: int) -> int | None:
        """Who holds the case: a live claim or a standing assignment."""
        if self.claim_expires_at_ms is not None and self.claim_expires_at_ms <= now_ms:
            return None
        return self.assignee_id


@dataclass(frozen=True, slots=True)
class EvidenceItem:
    id: int
    position: int
    sender: str | None
    conversation: str | None
    server_ts_ms: int | None
    kind: str | None
    verified: bool
    verdict: str
    text: str
    has_image: bool
    attachment_mime: str | None
    revealed: bool


@dataclass(frozen=True, slots=True)
class ReportView:
    id: int
    reporter: str
    reporter_age_band: str
    reason_label: str
    note: str | None
    blocked: bool
    created_at_ms: int
    items: list[EvidenceItem]
    reason: str = ""
    dismissed_at_ms: int | None = None  # dismissed on its own (a duplicate), the case going on without it


@dataclass(frozen=True, slots=True)
class CaseDetail:
    case: CaseSummary
    facts: AccountFacts
    reports: list[ReportView]
    notes: list[tuple[int, int | None, str]]  # (created_at_ms, reviewer id if a plain note, text)
    audit: list[AuditRow]


def _summary(case: CaseRow, subject: str, reports: int) -> CaseSummary:
    reason = ReportReason(case.top_reason)
    return CaseSummary(
        id=case.id,
        subject=subject,
        state=case.state,
        priority=case.priority,
        priority_label=priority_label(case.priority),
        reason=reason.value,
        reason_label=reason.label,
        verified=case.verified,
        reports=reports,
        assignee_id=case.assignee_id,
        updated_at_ms=case.updated_at_ms,
        queue=case.queue,
        queue_label=QueueName(case.queue).label,
        created_at_ms=case.created_at_ms,
        claim_expires_at_ms=case.claim_expires_at_ms,
        sla_ms=QueueName(case.queue).sla_ms,
        decided_at_ms=case.decided_at_ms,
        decision_policy_id=case.decision_policy_id,
        first_action_at_ms=case.first_action_at_ms,
    )


async def queue(ctx: ServerContext, where: QueueFilter) -> list[CaseSummary]:
    async with ctx.sessions() as session:
        rows = await CaseRepository(session).queue(where)
        return [_summary(case, subject, n) for case, subject, n in rows]


async def case_summary(ctx: ServerContext, case_id: int) -> CaseSummary:
    """Raises NotFoundError."""
    async with ctx.sessions() as session:
        case = await CaseRepository(session).get(case_id)
        if case is None:
            raise NotFoundError("no such case")
        subject = await UserRepository(session).by_id(case.subject_user_id)
        reports = len(await CaseRepository(session).reports_of(case_id))
        return _summary(case, subject.username if subject else "?", reports)


async def subject_id(ctx: ServerContext, case_id: int) -> int:
    """The id of the account the case is about. Raises NotFoundError."""
    async with ctx.sessions() as session:
        case = await CaseRepository(session).get(case_id)
    if case is None:
        raise NotFoundError("no such case")
    return case.subject_user_id


async def queue_count(ctx: ServerContext, where: QueueFilter) -> int:
    async with ctx.sessions() as session:
        return await CaseRepository(session).count(where)


async def claim_next(ctx: ServerContext, actor: str, reviewer_id: int, queue_name: QueueName) -> int | None:
    """Claims the most urgent unclaimed case in the queue for `VIGIL_CLAIM_MINUTES`; returns its id, or None
    when the queue has nothing to claim. The caller has checked the reviewer may work the queue."""
    now = ctx.clock_ms()
    async with ctx.sessions() as session, session.begin():
        case = await CaseRepository(session).claim_next(
            queue_name.value, reviewer_id, now, now + ctx.settings.claim_minutes * 60_000
        )
        if case is None:
            return None
        if case.first_action_at_ms is None:
            case.first_action_at_ms = now
        await append_audit(
            session,
            now_ms=now,
            actor=actor,
            action="case.claimed",
            target=f"case:{case.id}",
            details={"queue": queue_name.value, "until_ms": case.claim_expires_at_ms},
        )
        return case.id


async def release(ctx: ServerContext, actor: str, reviewer_id: int, case_id: int, *, lead: bool) -> None:
    """Gives a claimed or assigned case back to its queue. Raises NotFoundError, PermissionDenied when
    someone else holds it and the caller is no lead."""
    now = ctx.clock_ms()
    async with ctx.sessions() as session, session.begin():
        case = await CaseRepository(session).get(case_id)
        if case is None:
            raise NotFoundError("no such case")
        if case.assignee_id not in (None, reviewer_id) and not lead:
            raise PermissionDenied("another reviewer holds this case; a lead can release it")
        case.assignee_id, case.claim_expires_at_ms, case.updated_at_ms = None, None, now
        if case.state in (CaseState.IN_REVIEW, CaseState.ON_HOLD):
            case.state = CaseState.OPEN.value
        await append_audit(session, now_ms=now, actor=actor, action="case.released", target=f"case:{case_id}")


async def hold(ctx: ServerContext, actor: str, case_id: int) -> None:
    """Puts an open case on hold (kept by its holder, out of "claim next"). Raises NotFoundError,
    ConflictError when the case is closed."""
    now = ctx.clock_ms()
    async with ctx.sessions() as session, session.begin():
        case = await CaseRepository(session).get(case_id)
        if case is None:
            raise NotFoundError("no such case")
        if case.state not in (CaseState.OPEN, CaseState.IN_REVIEW, CaseState.ESCALATED):
            raise ConflictError("only an open case can be put on hold")
        case.state, case.claim_expires_at_ms, case.updated_at_ms = CaseState.ON_HOLD.value, None, now
        if case.first_action_at_ms is None:
            case.first_action_at_ms = now
        await append_audit(session, now_ms=now, actor=actor, action="case.held", target=f"case:{case_id}")


async def case_detail(ctx: ServerContext, actor: str, case_id: int, revealed: frozenset[int]) -> CaseDetail:
    """Decrypts the case's evidence for display and logs the view. Raises NotFoundError."""
    box = evidence_box(ctx)
    async with ctx.sessions() as session, session.begin():
        cases = CaseRepository(session)
        case = await cases.get(case_id)
        if case is None:
            raise NotFoundError("no such case")
        subject = await UserRepository(session).by_id(case.subject_user_id)
        if subject is None:
            raise NotFoundError("the case's account no longer exists")
        report_rows = list(await cases.reports_of(case_id))
        items = await cases.items_of([r.id for r, _ in report_rows])
        views = []
        for report, reporter in report_rows:
            evidence = []
            for item in (i for i in items if i.report_id == report.id):
                try:
                    payload = json.loads(
                        box.open(item.content_enc, item_content_context(report.id, item.position, "content"))
                    )
                    text = str(payload.get("body", "")) if isinstance(payload, dict) else ""
                except (StorageError, ValueError):
                    text = "[evidence could not be decrypted]"
                evidence.append(
                    EvidenceItem(
                        id=item.id,
                        position=item.position,
                        sender=item.sender,
                        conversation=item.conversation,
                        server_ts_ms=item.server_ts_ms,
                        kind=item.kind,
                        verified=item.verified,
                        verdict=item.verdict,
                        text=text,
                        has_image=item.attachment_enc is not None
                        and (item.attachment_mime or "").startswith("image/"),
                        attachment_mime=item.attachment_mime,
                        revealed=item.id in revealed,
                    )
                )
            note = None
            if report.note_enc is not None:
                note = box.open(report.note_enc, f"report:{report.id}:note").decode()
            views.append(
                ReportView(
                    id=report.id,
                    reporter=reporter,
                    reporter_age_band=report.reporter_age_band,
                    reason_label=ReportReason(report.reason).label,
                    note=note,
                    blocked=report.blocked,
                    created_at_ms=report.created_at_ms,
                    items=sorted(evidence, key=lambda e: -e.position),
                    reason=report.reason,
                    dismissed_at_ms=report.dismissed_at_ms,
                )
            )
        notes: list[tuple[int, int | None, str]] = [
            (n.created_at_ms, n.reviewer_id, box.open(n.body_enc, f"case_note:{case_id}").decode())
            for n in await cases.notes_of(case_id)
        ]
        sealed = await read_case_evidence(ctx.report_key, session, case_id)
        notes += [
            (at, None, f"[{author}, with the decision] {content.decode()}")
            for _id, kind, author, at, content in sealed
            if kind is EvidenceKind.ACTION_NOTE
        ]
        notes += [
            (at, None, f"[the user's appeal] {content.decode()}")
            for _id, kind, _author, at, content in sealed
            if kind is EvidenceKind.APPEAL_REASON
        ]
        notes += [
            (at, None, f"[preserved under a legal hold by {author}] {preserved_summary(content)}")
            for _id, kind, author, at, content in sealed
            if kind is EvidenceKind.PRESERVED_DATA
        ]
        notes.sort(key=lambda note: note[0])
        facts = await cases.account_facts(subject)
        await append_audit(
            session,
            now_ms=ctx.clock_ms(),
            actor=actor,
            action="case.viewed",
            target=f"case:{case_id}",
            details={"items": [i.id for i in items]},
        )
        trail = await entries_for(session, f"case:{case_id}")
        return CaseDetail(_summary(case, subject.username, len(report_rows)), facts, views, notes, trail)


async def _set_standing(ctx_now: int, session: AsyncSession, user_id: int, standing: Standing) -> None:
    await StandingRepository(session).set(
        user_id, None if standing is Standing.ACTIVE else standing.value, ctx_now
    )


async def apply_action(
    ctx: ServerContext,
    actor: str,
    reviewer_id: int | None,
    case_id: int,
    action: CaseAction,
    note: str = "",
    *,
    policy_id: int | None = None,
) -> CaseState:
    """Applies `action` to the case's account and moves the case on; returns the new state. A decision
    (`DECISIONS`) cites an active policy, whether or not a reviewer makes it. Raises NotFoundError,
    ConflictError when the case is already closed (dismiss/escalate), ValidationError for a decision
    without a valid policy."""
    async with ctx.sessions() as session, session.begin():
        state, applied, subject_user_id = await apply_action_in(
            ctx, session, actor, reviewer_id, case_id, action, note, policy_id=policy_id
        )
    if applied is CaseAction.SUSPEND:
        # After the commit: a credential checked from here on reads the suspension.
        await ctx.credentials_changed(user_ids=[subject_user_id])
    return state


async def apply_action_in(
    ctx: ServerContext,
    session: AsyncSession,
    actor: str,
    reviewer_id: int | None,
    case_id: int,
    action: CaseAction,
    note: str = "",
    *,
    policy_id: int | None = None,
) -> tuple[CaseState, CaseAction, int]:
    """`apply_action` inside the caller's transaction; returns the new state, the action applied (after
    strike escalation) and the case's account id. A suspension applied here is the caller's to announce
    (`ctx.credentials_changed`) after its commit. Raises as `apply_action`."""
    now = ctx.clock_ms()
    case = await CaseRepository(session).get(case_id)
    if case is None:
        raise NotFoundError("no such case")
    policy = None if policy_id is None else await PolicyRepository(session).get(policy_id)
    if policy_id is not None and (policy is None or not policy.active):
        raise ValidationError("policy: no such active policy")
    # Every decision cites a policy, whoever makes it (a reviewer, a lead's script, a system actor):
    # without one the strike under that policy would go uncounted and escalation would never come.
    if action in DECISIONS and policy is None:
        raise ValidationError("policy: every decision cites a policy; choose one")
    chosen, strikes = action, 0
    if policy is not None and action.value in set(Sanction):
        strikes = 1 + await StandingRepository(session).count_actions(
            case.subject_user_id, policy.id, [s.value for s in Sanction]
        )
        thresholds = parse_thresholds(ctx.settings.strike_thresholds)
        action = CaseAction(escalate(Sanction(action.value), strikes, thresholds).value)
    closed = case.state in CLOSED_STATES
    match action:
        case CaseAction.WARN:
            state = CaseState.ACTIONED
        case CaseAction.RESTRICT:
            await _set_standing(now, session, case.subject_user_id, Standing.RESTRICTED)
            state = CaseState.ACTIONED
        case CaseAction.SUSPEND:
            await _set_standing(now, session, case.subject_user_id, Standing.SUSPENDED)
            state = CaseState.ACTIONED
        case CaseAction.LIFT:
            await _set_standing(now, session, case.subject_user_id, Standing.ACTIVE)
            state = CaseState(case.state)
        case CaseAction.DISMISS | CaseAction.ESCALATE:
            if closed:
                raise ConflictError("the case is closed; a lead can reopen it")
            state = CaseState.DISMISSED if action is CaseAction.DISMISS else CaseState.ESCALATED
    if action.value in ACTION_TEXTS:
        # Told to the account itself in a signed notice (its own standing, unlike the neutral refusals
        # others see); readable, and appealable, even while suspended.
        subject = await UserRepository(session).by_id(case.subject_user_id)
        if subject is not None:
            await issue_action_notice(ctx, session, user=subject, action=action.value, now_ms=now)
    StandingRepository(session).add_action(
        AccountActionRow(
            user_id=case.subject_user_id,
            action=action.value,
            case_id=case.id,
            reviewer_id=reviewer_id,
            created_at_ms=now,
            policy_id=policy.id if policy is not None else None,
        )
    )
    if policy is not None:
        case.decision_policy_id = policy.id
    case.state, case.updated_at_ms = state.value, now
    if case.first_action_at_ms is None:
        case.first_action_at_ms = now
    if state in (CaseState.ACTIONED, CaseState.DISMISSED) and case.decided_at_ms is None:
        case.decided_at_ms = now
    if state is not CaseState.ESCALATED:
        case.claim_expires_at_ms = None
    details: dict[str, object] = {"action": action.value, "state": state.value}
    if state in CLOSED_STATES:
        # The case's image-match records are decided with it; closed, their retention starts.
        closed_matches = await VoucherRepository(session).set_state_of_case_records(
            case.id, state.value, from_states=OPEN_STATES
        )
        if closed_matches:
            details["image_matches_closed"] = closed_matches
    if policy is not None:
        details["policy"] = policy.code
    if strikes:
        details["strikes"] = strikes
        if action is not chosen:
            details["escalated_from"] = chosen.value
    if note:
        # The note is case evidence under the case's key; the audit entry only references it.
        details["note_evidence"] = await store_case_evidence(
            ctx.report_key,
            session,
            case_id=case_id,
            kind=EvidenceKind.ACTION_NOTE,
            author=actor,
            content=note[:500].encode(),
            now_ms=now,
        )
    await append_audit(
        session,
        now_ms=now,
        actor=actor,
        action=f"case.{action.value}",
        target=f"case:{case_id}",
        details=details,
    )
    return state, action, case.subject_user_id


async def add_note(ctx: ServerContext, actor: str, reviewer_id: int, case_id: int, text: str) -> None:
    """Raises ValidationError for an empty or long note, NotFoundError."""
    text = text.strip()
    if not text or len(text) > 5000:
        raise ValidationError("a note has 1 to 5000 characters")
    box = evidence_box(ctx)
    async with ctx.sessions() as session, session.begin():
        cases = CaseRepository(session)
        if await cases.get(case_id) is None:
            raise NotFoundError("no such case")
        await cases.add_note(
            CaseNoteRow(
                case_id=case_id,
                reviewer_id=reviewer_id,
                body_enc=box.seal(text.encode(), f"case_note:{case_id}"),
                created_at_ms=ctx.clock_ms(),
            )
        )
        await append_audit(
            session, now_ms=ctx.clock_ms(), actor=actor, action="case.note_added", target=f"case:{case_id}"
        )


async def assign(ctx: ServerContext, actor: str, case_id: int, assignee_id: int | None) -> None:
    """Assigns (or with None unassigns) the case; an open case goes into review. Raises NotFoundError (no
    such case, or no such active reviewer to assign it to)."""
    async with ctx.sessions() as session, session.begin():
        case = await CaseRepository(session).get(case_id)
        if case is None:
            raise NotFoundError("no such case")
        if assignee_id is not None:
            assignee = await ReviewerRepository(session).get(assignee_id)
            if assignee is None or assignee.disabled:
                raise NotFoundError("assignee: no such active reviewer")
        case.assignee_id, case.claim_expires_at_ms = assignee_id, None
        if assignee_id is not None and case.state == CaseState.OPEN:
            case.state = CaseState.IN_REVIEW.value
        case.updated_at_ms = ctx.clock_ms()
        await append_audit(
            session,
            now_ms=ctx.clock_ms(),
            actor=actor,
            action="case.assigned",
            target=f"case:{case_id}",
            details={"assignee": assignee_id},
        )


async def reopen(ctx: ServerContext, actor: str, case_id: int) -> None:
    """Raises NotFoundError, ConflictError when the case is not closed."""
    async with ctx.sessions() as session, session.begin():
        case = await CaseRepository(session).get(case_id)
        if case is None:
            raise NotFoundError("no such case")
        if case.state not in (CaseState.ACTIONED, CaseState.DISMISSED, CaseState.ESCALATED):
            raise ConflictError("the case is not closed")
        case.state, case.updated_at_ms = CaseState.IN_REVIEW.value, ctx.clock_ms()
        # Its image-match records reopen with it (those retention has not deleted yet).
        reopened = await VoucherRepository(session).set_state_of_case_records(
            case_id, CaseState.OPEN.value, from_states=[s.value for s in CLOSED_STATES]
        )
        await append_audit(
            session,
            now_ms=ctx.clock_ms(),
            actor=actor,
            action="case.reopened",
            target=f"case:{case_id}",
            details={"image_matches_reopened": reopened} if reopened else None,
        )


async def open_or_join_case(
    session: AsyncSession,
    subject: UserRow,
    reason: ReportReason,
    priority: int,
    verified: bool,
    now_ms: int,
    *,
    queue: QueueName = QueueName.GENERAL,
) -> CaseRow:
    """The shared case-creation seam (reports, account reports, image-match vouchers, risk scoring):
    joins the open case about `subject`, raising its priority and verified flag as needed, or opens one.
    Runs inside the caller's transaction."""
    cases = CaseRepository(session)
    case = await cases.open_case_about(subject.id)
    if case is None:
        return await cases.add(
            CaseRow(
                subject_user_id=subject.id,
                state="open",
                priority=priority,
                top_reason=reason.value,
                verified=verified,
                assignee_id=None,
                created_at_ms=now_ms,
                updated_at_ms=now_ms,
                queue=queue.value,
            )
        )
    case.queue = more_urgent_queue(QueueName(case.queue), queue).value
    if priority > case.priority:
        case.priority, case.top_reason = priority, reason.value
    case.verified = case.verified or verified
    case.updated_at_ms = now_ms
    return case


async def file_report(
    ctx: ServerContext,
    session: AsyncSession,
    *,
    case: CaseRow,
    by: AuthenticatedDevice,
    reported: UserRow,
    reason: ReportReason,
    block: bool,
    now_ms: int,
) -> ReportRow:
    """Stores one report by `by` about `reported` in `case` (kept for the configured retention), inside
    the caller's transaction; its note and items are the caller's."""
    return await ReportRepository(session).add(
        ReportRow(
            case_id=case.id,
            reporter_user_id=by.user_id,
            reported_user_id=reported.id,
            reason=reason.value,
            reporter_age_band=by.age_band.value,
            note_enc=None,
            blocked=block,
            created_at_ms=now_ms,
            expires_at_ms=now_ms + ctx.settings.report_retention_days * _DAY_MS,
        )
    )


async def merge_case(ctx: ServerContext, actor: str, source_id: int, target_id: int) -> None:
    """Moves every report of case `source_id` into the open case `target_id` about the same account (a
    report's sealed items are bound to the report, not the case) and closes the source as dismissed, so
    duplicate reports about one item are decided once. Raises NotFoundError, ValidationError (different
    accounts, the same case, an appeal), ConflictError (either case closed or being filed to NCMEC right
    now, or the source was filed to NCMEC: its filings and holds stay with it).

    Atomic against filings and other merges: the transaction first takes both cases' CyberTipline filing
    leases (in case-id order, so two merges of one pair cannot deadlock), then checks filings and states
    and moves the reports, then gives the leases back. A filer holds its case's lease from before it reads
    the reports until the filing ends, so a case is never merged away while it is being filed, and a merge
    that lost a race sees the winner's outcome (the source closed) instead of moving reports twice."""
    if source_id == target_id:
        raise ValidationError("merge: a case cannot be merged into itself")
    now = ctx.clock_ms()
    owner = f"merge:{secrets.token_hex(8)}"
    async with ctx.sessions() as session, session.begin():
        filings = CyberTipFilingRepository(session)
        for case_id in sorted((source_id, target_id)):
            if not await filings.take_lease(case_id, owner, now, now + _MERGE_LEASE_MS):
                raise ConflictError(
                    f"merge: case {case_id} is being filed to NCMEC right now; try again later"
                )
        repository = CaseRepository(session)
        source, target = await repository.get(source_id), await repository.get(target_id)
        if source is None or target is None:
            raise NotFoundError("merge: no such case")
        if await filings.of_case(source_id):
            raise ConflictError("merge: this case was filed to NCMEC; merge the other case into it instead")
        if source.subject_user_id != target.subject_user_id:
            raise ValidationError("merge: the cases are about different accounts")
        if QueueName.APPEALS.value in (source.queue, target.queue):
            raise ValidationError("merge: an appeal is its own case")
        open_states = (CaseState.OPEN, CaseState.IN_REVIEW, CaseState.ESCALATED, CaseState.ON_HOLD)
        if source.state not in open_states or target.state not in open_states:
            raise ConflictError("merge: both cases must be open")
        moved = await ReportRepository(session).move_to_case(source_id, target_id)
        moved_matches = await VoucherRepository(session).move_case_records(source_id, target_id)
        target.queue = more_urgent_queue(QueueName(target.queue), QueueName(source.queue)).value
        if source.priority > target.priority:
            target.priority, target.top_reason = source.priority, source.top_reason
        target.verified = target.verified or source.verified
        target.created_at_ms = min(target.created_at_ms, source.created_at_ms)
        target.updated_at_ms = now
        source.state, source.updated_at_ms, source.claim_expires_at_ms = CaseState.DISMISSED.value, now, None
        source.decided_at_ms = source.decided_at_ms or now
        for case_id, action, other in (
            (source_id, "case.merged_into", target_id),
            (target_id, "case.merged_from", source_id),
        ):
            await append_audit(
                session,
                now_ms=now,
                actor=actor,
                action=action,
                target=f"case:{case_id}",
                details={"case": other, "reports": moved, "image_matches": moved_matches},
            )
        for case_id in (source_id, target_id):
            await filings.release_lease(case_id, owner)

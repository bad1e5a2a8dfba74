"""Appeals: an account whose account was actioned (warn, restrict, suspend) asks once for the action to be
reviewed again. The appeal opens a case of its own in the `appeals` queue; a reviewer upholds or overturns
it citing a policy (audited); an overturn lifts the action; either way the account gets a signed notice.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from vigil.errors import ConflictError, NotFoundError, ValidationError
from vigil.protocol.reports import AppealAccepted, AppealRequest, ReportReason
from vigil.safety.policy import Standing
from vigil.safety.routing import QueueName
from vigil.safety.strikes import Sanction
from vigil.server.context import ServerContext
from vigil.server.db.accounts import AccountActionRow, StandingRepository, UserRepository
from vigil.server.db.appeals import AppealRepository, AppealRow
from vigil.server.db.cases import CaseRepository, CaseRow
from vigil.server.db.policies import PolicyRepository
from vigil.server.services.accounts import AuthenticatedDevice
from vigil.server.services.audit import append_audit
from vigil.server.services.case_evidence import EvidenceKind, store_case_evidence
from vigil.server.services.notices import issue_notice

__all__ = ["APPEAL_PRIORITY", "AppealOutcome", "AppealView", "appeal_of_case", "decide_appeal", "file_appeal"]

APPEAL_PRIORITY = 50
_STANDING_OF = {Sanction.RESTRICT.value: Standing.RESTRICTED, Sanction.SUSPEND.value: Standing.SUSPENDED}
OVERTURNED_TEXT = (
    "Your appeal was accepted: after a second review, Vigil's safety team lifted the action on your "
    "account ({subject})."
)
UPHELD_TEXT = (
    "Your appeal was reviewed: Vigil's safety team kept the action on your account ({subject}). "
    "This decision is final."
)


class AppealOutcome(enum.StrEnum):
    UPHOLD = "uphold"
    OVERTURN = "overturn"

    @property
    def state(self) -> str:
        return "upheld" if self is AppealOutcome.UPHOLD else "overturned"


@dataclass(frozen=True, slots=True)
class AppealView:
    id: int
    action: str
    state: str
    created_at_ms: int
    decided_at_ms: int | None


async def file_appeal(ctx: ServerContext, by: AuthenticatedDevice, request: AppealRequest) -> AppealAccepted:
    """Raises NotFoundError when nothing was done to the account, ConflictError when its latest action
    was already appealed."""
    now = ctx.clock_ms()
    try:
        async with ctx.sessions() as session, session.begin():
            action = await StandingRepository(session).latest_action(by.user_id, [s.value for s in Sanction])
            if action is None:
                raise NotFoundError("appeal: no action was taken on this account")
            if await AppealRepository(session).for_action(action.id) is not None:
                raise ConflictError("appeal: this action was already appealed; an action is appealed once")
            case = await CaseRepository(session).add(
                CaseRow(
                    subject_user_id=by.user_id,
                    state="open",
                    priority=APPEAL_PRIORITY,
                    top_reason=ReportReason.OTHER.value,
                    verified=False,
                    assignee_id=None,
                    created_at_ms=now,
                    updated_at_ms=now,
                    queue=QueueName.APPEALS.value,
                )
            )
            appeal = await AppealRepository(session).add(
                AppealRow(
                    user_id=by.user_id,
                    account_action_id=action.id,
                    action=action.action,
                    case_id=case.id,
                    state="pending",
                    created_at_ms=now,
                )
            )
            # The user's own words are case evidence, sealed under the case's key like a reviewer's note.
            await store_case_evidence(
                ctx.report_key,
                session,
                case_id=case.id,
                kind=EvidenceKind.APPEAL_REASON,
                author=f"user:{by.user_id}",
                content=request.reason.encode(),
                now_ms=now,
            )
            await append_audit(
                session,
                now_ms=now,
                actor=f"user:{by.user_id}",
                action="appeal.filed",
                target=f"case:{case.id}",
                details={"appeal": appeal.id, "action": action.action, "action_case": action.case_id},
            )
            return AppealAccepted(appeal_id=appeal.id, action=action.action)
    except IntegrityError as error:  # the same action appealed twice at once: the unique key decides
        raise ConflictError("appeal: this action was already appealed; an action is appealed once") from error


async def appeal_of_case(ctx: ServerContext, case_id: int) -> AppealView | None:
    async with ctx.sessions() as session:
        row = await AppealRepository(session).for_case(case_id)
        if row is None:
            return None
        return AppealView(row.id, row.action, row.state, row.created_at_ms, row.decided_at_ms)


async def decide_appeal(
    ctx: ServerContext,
    actor: str,
    reviewer_id: int,
    case_id: int,
    outcome: AppealOutcome,
    policy_id: int | None,
) -> None:
    """Upholds or overturns the case's appeal. Raises NotFoundError (no appeal on the case),
    ValidationError (no active policy), ConflictError (already decided)."""
    now = ctx.clock_ms()
    async with ctx.sessions() as session, session.begin():
        appeal = await AppealRepository(session).for_case(case_id)
        if appeal is None:
            raise NotFoundError("no appeal on this case")
        policy = None if policy_id is None else await PolicyRepository(session).get(policy_id)
        if policy is None or not policy.active:
            raise ValidationError("policy: every decision cites a policy; choose one")
        if appeal.state != "pending":
            raise ConflictError(f"the appeal was already {appeal.state}")
        case = await CaseRepository(session).get(case_id)
        user = await UserRepository(session).by_id(appeal.user_id)
        if case is None or user is None:
            raise NotFoundError("the appealing account is gone")
        standings = StandingRepository(session)
        if outcome is AppealOutcome.OVERTURN:
            imposed = _STANDING_OF.get(appeal.action)
            current = await standings.get(appeal.user_id)
            # Lifted only while it is still the account's standing (a later decision is not undone).
            if imposed is not None and current is not None and current.standing == imposed.value:
                await standings.set(appeal.user_id, None, now)
            standings.add_action(
                AccountActionRow(
                    user_id=appeal.user_id,
                    action="lift",
                    case_id=case_id,
                    reviewer_id=reviewer_id,
                    created_at_ms=now,
                    policy_id=policy.id,
                )
            )
        appeal.state, appeal.decided_at_ms = outcome.state, now
        appeal.reviewer_id, appeal.policy_id = reviewer_id, policy.id
        case.state, case.updated_at_ms, case.decision_policy_id = "actioned", now, policy.id
        case.decided_at_ms = case.decided_at_ms or now
        case.first_action_at_ms = case.first_action_at_ms or now
        case.claim_expires_at_ms = None
        await issue_notice(
            ctx,
            session,
            recipient=user,
            subject=user,
            kind=f"appeal_{outcome.state}",
            text=OVERTURNED_TEXT if outcome is AppealOutcome.OVERTURN else UPHELD_TEXT,
            now_ms=now,
            actions=(),  # about the account itself: nothing to block or report
        )
        await append_audit(
            session,
            now_ms=now,
            actor=actor,
            action=f"appeal.{outcome.state}",
            target=f"case:{case_id}",
            details={"appeal": appeal.id, "action": appeal.action, "policy": policy.code},
        )
    if outcome is AppealOutcome.OVERTURN:
        await ctx.credentials_changed(user_ids=[appeal.user_id])

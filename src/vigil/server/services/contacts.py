"""Contact requests and connections: the minors' protective defaults (issue 6).

Minors receive direct messages only from accounts they are connected to (enforced on the send path by
`enforcement.check_send`). Anyone else starts with a contact request, which carries no text and no
media; the recipient accepts, ignores, blocks or reports. New accounts may send only a few requests a
day. When an adult who is not connected to a minor reaches them, the minor gets a signed safety notice.
Every step is recorded in the metadata event log.
"""

from __future__ import annotations

import enum

from sqlalchemy.ext.asyncio import AsyncSession

from vigil.errors import ConflictError, NotFoundError, PolicyViolation, ValidationError
from vigil.protocol.contacts import (
    AccountReportRequest,
    ContactList,
    ContactRequestList,
    ContactRequestState,
    ContactRequestView,
)
from vigil.protocol.reports import ReportAccepted
from vigil.protocol.wire import AgeBand
from vigil.safety.behavior import events as ev
from vigil.safety.policy import Refusal, Standing, public_refusal
from vigil.safety.reports import priority_for
from vigil.safety.routing import CaseSource, RoutingInput, route
from vigil.server.context import ServerContext
from vigil.server.db.accounts import UserRepository, UserRow
from vigil.server.db.contacts import BlockRepository, ContactRepository, ContactRequestRow
from vigil.server.db.metadata import RiskStateRepository
from vigil.server.services import enforcement, metadata, notices
from vigil.server.services.accounts import AuthenticatedDevice
from vigil.server.services.audit import append_audit
from vigil.server.services.cases import file_report, open_or_join_case
from vigil.server.services.reporters import is_bad_faith

__all__ = [
    "REQUEST_TTL_MS",
    "RequestAnswer",
    "answer_request",
    "expire_requests",
    "list_contacts",
    "list_requests",
    "report_account",
    "request_contact",
]

DAY_MS = 24 * 3600 * 1000
REQUEST_TTL_MS = 14 * DAY_MS  # unanswered requests expire, recorded as "ignored"
_ELEVATED_LEVELS = ("safety_notice", "restrict_minor_contact", "open_case")


class RequestAnswer(enum.StrEnum):
    ACCEPT = "accept"
    IGNORE = "ignore"
    BLOCK = "block"


def _view(row: ContactRequestRow, requester: str, recipient: str) -> ContactRequestView:
    return ContactRequestView(
        id=row.id,
        requester=requester,
        recipient=recipient,
        state=ContactRequestState(row.state),
        created_at_ms=row.created_at_ms,
        answered_at_ms=row.answered_at_ms,
    )


async def _target(session: AsyncSession, username: str) -> UserRow:
    user = await UserRepository(session).by_username(username)
    if user is None:
        raise NotFoundError(f"no user named {username}")
    return user


async def _elevated(session: AsyncSession, user_id: int) -> bool:
    state = await RiskStateRepository(session).get(user_id)
    return state is not None and state.level in _ELEVATED_LEVELS


async def request_contact(ctx: ServerContext, by: AuthenticatedDevice, to: str) -> ContactRequestView:
    """Sends a contact request. Raises NotFoundError (no such user), ValidationError (oneself),
    ConflictError (already connected, or a request is already pending either way), PolicyViolation
    (blocked by them, suspended, restricted from contact with minors, or the daily limit of a new
    account reached)."""
    now = ctx.clock_ms()
    async with ctx.sessions() as session, session.begin():
        target = await _target(session, to)
        if target.id == by.user_id:
            raise ValidationError("you cannot send a contact request to yourself")
        standing = await enforcement.standing_of(session, by.user_id)
        target_band = AgeBand(target.age_band)
        if standing is Standing.SUSPENDED:
            raise PolicyViolation(public_refusal(Refusal.SUSPENDED))
        if await BlockRepository(session).exists(target.id, by.user_id):
            raise PolicyViolation(public_refusal(Refusal.BLOCKED_BY_RECIPIENT))
        if standing is Standing.RESTRICTED and target_band.is_minor:
            raise PolicyViolation(public_refusal(Refusal.RESTRICTED_FROM_MINORS))
        contacts = ContactRepository(session)
        if await contacts.connected(by.user_id, target.id):
            raise ConflictError(f"you are already connected to {to}")
        if await contacts.pending(by.user_id, target.id) is not None:
            raise ConflictError(f"a request to {to} is already pending")
        if await contacts.pending(target.id, by.user_id) is not None:
            raise ConflictError(f"{to} has already asked to connect with you: accept their request")
        me = await UserRepository(session).by_id(by.user_id)
        assert me is not None
        if now - me.created_at_ms < ctx.settings.new_account_days * DAY_MS:
            sent_today = await contacts.sent_since(by.user_id, now - DAY_MS)
            limit = ctx.settings.contact_requests_per_day_new
            if sent_today >= limit:
                raise PolicyViolation(
                    f"new accounts can send at most {limit} contact requests a day; try again tomorrow"
                )
        row = await contacts.add_request(
            ContactRequestRow(
                requester_user_id=by.user_id,
                recipient_user_id=target.id,
                state=ContactRequestState.PENDING.value,
                created_at_ms=now,
            )
        )
        await metadata.record(ctx, session, ev.ContactRequestSent(now, ev.UserId(by.username), ev.UserId(to)))
        if target_band.is_minor and not by.age_band.is_minor:
            elevated = await _elevated(session, by.user_id)
            await notices.issue_notice(
                ctx,
                session,
                recipient=target,
                subject=me,
                kind="elevated_risk" if elevated else "unconnected_adult",
                text=notices.ELEVATED_RISK_TEXT if elevated else notices.UNCONNECTED_ADULT_TEXT,
                now_ms=now,
            )
        return _view(row, by.username, to)


async def list_requests(ctx: ServerContext, by: AuthenticatedDevice) -> ContactRequestList:
    """Pending requests to this account, and this account's own recent requests."""
    async with ctx.sessions() as session:
        users = UserRepository(session)
        contacts = ContactRepository(session)
        incoming = await contacts.pending_to(by.user_id, limit=200)
        outgoing = await contacts.sent_by(by.user_id, limit=200)
        names: dict[int, str] = {by.user_id: by.username}

        async def name(user_id: int) -> str:
            if user_id not in names:
                user = await users.by_id(user_id)
                names[user_id] = user.username if user is not None else "?"
            return names[user_id]

        return ContactRequestList(
            incoming=[_view(r, await name(r.requester_user_id), by.username) for r in incoming],
            outgoing=[_view(r, by.username, await name(r.recipient_user_id)) for r in outgoing],
        )


async def answer_request(
    ctx: ServerContext, by: AuthenticatedDevice, request_id: int, answer: RequestAnswer
) -> ContactRequestView:
    """Accept, ignore or block. Raises NotFoundError (no such request to this account), ConflictError
    (already answered)."""
    now = ctx.clock_ms()
    async with ctx.sessions() as session, session.begin():
        contacts = ContactRepository(session)
        row = await contacts.request(request_id)
        if row is None or row.recipient_user_id != by.user_id:
            raise NotFoundError("no such contact request")
        if row.state != ContactRequestState.PENDING.value:
            raise ConflictError(f"the request was already answered ({row.state})")
        requester = await UserRepository(session).by_id(row.requester_user_id)
        if requester is None:
            raise NotFoundError("the requester no longer exists")
        row.answered_at_ms = now
        who, me = ev.UserId(requester.username), ev.UserId(by.username)
        match answer:
            case RequestAnswer.ACCEPT:
                row.state = ContactRequestState.ACCEPTED.value
                if not await contacts.connected(requester.id, by.user_id):
                    contacts.connect(requester.id, by.user_id, now)
                outcome = ev.RequestOutcome.ACCEPTED
            case RequestAnswer.IGNORE:
                # An explicit "ignore" is the recipient's decision: recorded as declined. Requests that
                # simply expire are recorded as ignored (`expire_requests`).
                row.state = ContactRequestState.IGNORED.value
                outcome = ev.RequestOutcome.DECLINED
            case RequestAnswer.BLOCK:
                row.state = ContactRequestState.BLOCKED.value
                await BlockRepository(session).add(by.user_id, requester.id, now)
                outcome = ev.RequestOutcome.DECLINED
        await metadata.record(ctx, session, ev.ContactRequestAnswered(now, who, me, outcome))
        if answer is RequestAnswer.BLOCK:
            await metadata.record(ctx, session, ev.Block(now, me, who))
        return _view(row, requester.username, by.username)


async def expire_requests(ctx: ServerContext, now_ms: int | None = None) -> int:
    """Pending requests older than REQUEST_TTL_MS become ignored; returns how many."""
    now = ctx.clock_ms() if now_ms is None else now_ms
    async with ctx.sessions() as session, session.begin():
        rows = await ContactRepository(session).pending_before(now - REQUEST_TTL_MS)
        users = UserRepository(session)
        for row in rows:
            requester, recipient = (
                await users.by_id(row.requester_user_id),
                await users.by_id(row.recipient_user_id),
            )
            row.state, row.answered_at_ms = ContactRequestState.IGNORED.value, now
            if requester is not None and recipient is not None:
                await metadata.record(
                    ctx,
                    session,
                    ev.ContactRequestAnswered(
                        now,
                        ev.UserId(requester.username),
                        ev.UserId(recipient.username),
                        ev.RequestOutcome.IGNORED,
                    ),
                )
        return len(rows)


async def list_contacts(ctx: ServerContext, by: AuthenticatedDevice) -> ContactList:
    async with ctx.sessions() as session:
        return ContactList(contacts=list(await ContactRepository(session).contacts_of(by.user_id)))


async def report_account(
    ctx: ServerContext, by: AuthenticatedDevice, request: AccountReportRequest
) -> ReportAccepted:
    """A report about an account (from a contact request or a safety notice) with no message evidence:
    it opens or joins the case about that account, unverified. Raises NotFoundError, ValidationError
    (oneself)."""
    now = ctx.clock_ms()
    async with ctx.sessions() as session, session.begin():
        reported = await _target(session, request.username)
        if reported.id == by.user_id:
            raise ValidationError("you cannot report yourself")
        priority = priority_for(
            request.reason, False, by.age_band, bad_faith_reporter=await is_bad_faith(session, by.user_id)
        )
        routed = route(RoutingInput(CaseSource.ACCOUNT_REPORT, request.reason, by.age_band))
        case = await open_or_join_case(session, reported, request.reason, priority, False, now, queue=routed)
        report = await file_report(
            ctx,
            session,
            case=case,
            by=by,
            reported=reported,
            reason=request.reason,
            block=request.block,
            now_ms=now,
        )
        me, them = ev.UserId(by.username), ev.UserId(reported.username)
        await metadata.record(
            ctx, session, metadata.report_event(now, by.username, reported.username, request.reason)
        )
        if request.block and await BlockRepository(session).add(by.user_id, reported.id, now):
            await metadata.record(ctx, session, ev.Block(now, me, them))
        await append_audit(
            session,
            now_ms=now,
            actor=f"user:{by.user_id}",
            action="report.account",
            target=f"case:{case.id}",
            details={"report": report.id, "reason": request.reason.value, "blocked": request.block},
        )
        return ReportAccepted(
            report_id=report.id,
            case_id=case.id,
            reported=reported.username,
            verified=[],
            blocked=request.block,
        )

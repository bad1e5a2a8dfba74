"""Abuse reports, blocks and notices from the app side (DESIGN.md §3 "Report").

A report is verified item by item (`vigil.safety.reports.verify_item`): from the server's franking tag
the reporter's device kept, plus, for a group message, the group's membership history; the stored message
record is consulted only for items without a tag (own messages recorded before send answers carried
the tag). It is stored encrypted at rest, and creates or joins the open case about the reported account.
Expired reports are deleted.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from vigil.errors import NotFoundError, ValidationError
from vigil.protocol.encoding import b64decode, canonical_json
from vigil.protocol.reports import (
    BlockList,
    Notice,
    NoticeList,
    ReportAccepted,
    ReportedMessage,
    ReportRequest,
)
from vigil.safety.reports import (
    GROUP_PREFIX,
    ClaimedItem,
    GroupMembership,
    ItemVerdict,
    StoredMessage,
    priority_for,
    verify_item,
)
from vigil.safety.routing import CaseSource, RoutingInput, route
from vigil.server.context import ServerContext
from vigil.server.db.accounts import UserRepository
from vigil.server.db.cases import ReportItemRow, ReportRepository
from vigil.server.db.contacts import BlockRepository
from vigil.server.db.groups import GroupRepository
from vigil.server.db.messaging import MessageRepository
from vigil.server.db.notices import NoticeRepository
from vigil.server.services import metadata
from vigil.server.services.accounts import AuthenticatedDevice
from vigil.server.services.audit import append_audit
from vigil.server.services.cases import file_report, open_or_join_case
from vigil.server.services.evidence import EvidenceBox, evidence_box, item_content_context
from vigil.server.services.reporters import is_bad_faith

__all__ = [
    "block_user",
    "group_membership",
    "list_blocks",
    "list_notices",
    "submit_report",
    "sweep_expired_reports",
    "unblock_user",
]

DAY_MS = 24 * 3600 * 1000


def _claimed(message: ReportedMessage) -> ClaimedItem:
    return ClaimedItem(
        payload=dict(message.payload),
        commitment=b64decode(message.commitment, field="commitment"),
        franking_tag=None if message.franking_tag is None else b64decode(message.franking_tag, field="tag"),
        server_ts_ms=message.server_ts_ms,
        attachment=None if message.attachment is None else b64decode(message.attachment, field="attachment"),
    )


async def _stored(session: AsyncSession, claimed: ClaimedItem) -> StoredMessage | None:
    """The server's record, looked up only for an item without a tag (see `verify_item`)."""
    if claimed.franking_tag is not None and claimed.server_ts_ms is not None:
        return None
    sender, message_id = claimed.payload.get("sender"), claimed.payload.get("message_id")
    if not isinstance(sender, str) or not isinstance(message_id, str):
        return None
    user = await UserRepository(session).by_username(sender)
    if user is None:
        return None
    row = await MessageRepository(session).by_client_id(user.id, message_id)
    if row is None:
        return None
    return StoredMessage(user.username, row.conversation, row.server_ts_ms, row.commitment, row.franking_tag)


async def group_membership(
    session: AsyncSession, conversation: str, usernames: list[str]
) -> GroupMembership | None:
    """The membership history of a "group:<id>" conversation for these accounts; None for a direct one."""
    if not conversation.startswith(GROUP_PREFIX):
        return None
    periods = await GroupRepository(session).membership_periods(
        conversation.removeprefix(GROUP_PREFIX), usernames
    )
    return GroupMembership(conversation, periods)


async def _membership(session: AsyncSession, reporter: str, claimed: ClaimedItem) -> GroupMembership | None:
    """The membership history of the item's group for its claimed sender and the reporter."""
    conversation, sender = claimed.payload.get("conversation"), claimed.payload.get("sender")
    if not isinstance(conversation, str):
        return None
    return await group_membership(
        session, conversation, [reporter] + ([sender] if isinstance(sender, str) else [])
    )


async def _verify(session: AsyncSession, key: bytes, reporter: str, claimed: ClaimedItem) -> ItemVerdict:
    stored = await _stored(session, claimed)
    return verify_item(key, reporter, claimed, stored, await _membership(session, reporter, claimed))


def _outside_conversation(verdict: ItemVerdict, primary: ItemVerdict, pair: set[str]) -> ItemVerdict:
    """A context item counts only from the reported conversation: the same group, or the same pair."""
    if not verdict.verified:
        return verdict
    if (primary.conversation or "").startswith(GROUP_PREFIX):
        if verdict.conversation == primary.conversation:
            return verdict
    elif {verdict.sender, verdict.conversation} == pair:
        return verdict
    return ItemVerdict(
        False,
        "not part of the reported conversation",
        verdict.payload,
        verdict.sender,
        verdict.conversation,
        verdict.server_ts_ms,
    )


def _item_row(
    box: EvidenceBox, report_id: int, position: int, claimed: ClaimedItem, verdict: ItemVerdict
) -> ReportItemRow:
    payload = verdict.payload
    message_id = claimed.payload.get("message_id")
    attachment_mime = payload.attachment.mime if payload is not None and payload.attachment else None
    return ReportItemRow(
        report_id=report_id,
        position=position,
        message_id=str(message_id)[:64] if message_id is not None else "?",
        sender=(verdict.sender or "")[:32] or None,
        conversation=(verdict.conversation or "")[:80] or None,
        server_ts_ms=verdict.server_ts_ms,
        kind=payload.kind.value if payload is not None else None,
        verified=verdict.verified,
        verdict=verdict.reason[:200],
        content_enc=box.seal(
            canonical_json(claimed.payload), item_content_context(report_id, position, "content")
        ),
        attachment_enc=None
        if claimed.attachment is None
        else box.seal(claimed.attachment, item_content_context(report_id, position, "attachment")),
        attachment_mime=attachment_mime,
    )


async def submit_report(
    ctx: ServerContext, by: AuthenticatedDevice, request: ReportRequest
) -> ReportAccepted:
    """Verifies and stores a report, creates or joins the case about the reported account, and blocks
    it when asked. Raises ValidationError when the reported message is the reporter's own or names no
    sender, NotFoundError when its sender does not exist."""
    box = evidence_box(ctx)
    now_ms = ctx.clock_ms()
    claimed = [_claimed(m) for m in request.messages]
    async with ctx.sessions() as session, session.begin():
        verdicts = [await _verify(session, ctx.franking_key, by.username, c) for c in claimed]
        primary = verdicts[0]
        reported_name = primary.sender or claimed[0].payload.get("sender")
        if not isinstance(reported_name, str):
            raise ValidationError("the reported message names no sender")
        if reported_name == by.username:
            raise ValidationError("you cannot report your own message")
        reported = await UserRepository(session).by_username(reported_name)
        if reported is None:
            raise NotFoundError(f"no user named {reported_name}")
        pair = {by.username, reported.username}
        verdicts = [primary] + [_outside_conversation(v, primary, pair) for v in verdicts[1:]]
        priority = priority_for(
            request.reason,
            primary.verified,
            by.age_band,
            bad_faith_reporter=await is_bad_faith(session, by.user_id),
        )
        routed = route(
            RoutingInput(
                CaseSource.MESSAGE_REPORT,
                request.reason,
                by.age_band,
                has_image=any(c.attachment is not None for c in claimed),
            )
        )
        case = await open_or_join_case(
            session, reported, request.reason, priority, primary.verified, now_ms, queue=routed
        )
        report = await file_report(
            ctx,
            session,
            case=case,
            by=by,
            reported=reported,
            reason=request.reason,
            block=request.block,
            now_ms=now_ms,
        )
        if request.note:
            report.note_enc = box.seal(request.note.encode(), f"report:{report.id}:note")
        await ReportRepository(session).add_items(
            [
                _item_row(box, report.id, n, c, v)
                for n, (c, v) in enumerate(zip(claimed, verdicts, strict=True))
            ]
        )
        await metadata.record(
            ctx, session, metadata.report_event(now_ms, by.username, reported.username, request.reason)
        )
        if request.block and await BlockRepository(session).add(by.user_id, reported.id, now_ms):
            await metadata.record(ctx, session, metadata.block_event(now_ms, by.username, reported.username))
        await append_audit(
            session,
            now_ms=now_ms,
            actor=f"user:{by.user_id}",
            action="report.submitted",
            target=f"case:{case.id}",
            details={
                "report": report.id,
                "reason": request.reason.value,
                "verified": [v.verified for v in verdicts],
                "blocked": request.block,
            },
        )
        accepted = ReportAccepted(
            report_id=report.id,
            case_id=case.id,
            reported=reported.username,
            verified=[v.verified for v in verdicts],
            blocked=request.block,
        )
    return accepted


async def block_user(ctx: ServerContext, by: AuthenticatedDevice, username: str) -> None:
    """Raises NotFoundError for an unknown user, ValidationError for blocking oneself."""
    async with ctx.sessions() as session, session.begin():
        target = await UserRepository(session).by_username(username)
        if target is None:
            raise NotFoundError(f"no user named {username}")
        if target.id == by.user_id:
            raise ValidationError("you cannot block yourself")
        if await BlockRepository(session).add(by.user_id, target.id, ctx.clock_ms()):
            event = metadata.block_event(ctx.clock_ms(), by.username, target.username)
            await metadata.record(ctx, session, event)


async def unblock_user(ctx: ServerContext, by: AuthenticatedDevice, username: str) -> None:
    """Raises NotFoundError for an unknown user."""
    async with ctx.sessions() as session, session.begin():
        target = await UserRepository(session).by_username(username)
        if target is None:
            raise NotFoundError(f"no user named {username}")
        await BlockRepository(session).remove(by.user_id, target.id)


async def list_blocks(ctx: ServerContext, by: AuthenticatedDevice) -> BlockList:
    async with ctx.sessions() as session:
        return BlockList(blocked=list(await BlockRepository(session).blocked_by(by.user_id)))


async def list_notices(ctx: ServerContext, by: AuthenticatedDevice, after: int = 0) -> NoticeList:
    async with ctx.sessions() as session:
        rows = await NoticeRepository(session).notices(by.user_id, after)
        return NoticeList(
            notices=[Notice(id=r.id, kind=r.kind, text=r.text, created_at_ms=r.created_at_ms) for r in rows]
        )


async def sweep_expired_reports(ctx: ServerContext, now_ms: int | None = None) -> int:
    """Deletes reports (and their encrypted content) past retention at `now_ms` (default: the server
    clock); returns how many. Cases stay, as metadata, with their audit trail; a preservation hold keeps
    its own sealed copy of its case's reports."""
    now = ctx.clock_ms() if now_ms is None else now_ms
    async with ctx.sessions() as session, session.begin():
        reports = ReportRepository(session)
        expired = list(await reports.expired(now))
        await reports.delete(expired)
        if expired:
            await append_audit(
                session,
                now_ms=now,
                actor="system",
                action="reports.expired",
                target="retention",
                details={"reports": expired},
            )
    return len(expired)

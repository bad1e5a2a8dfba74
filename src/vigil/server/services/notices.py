"""Signed safety notices: when an unconnected adult, or an account whose risk is elevated, reaches a
minor, the minor's client shows a notice with block and report actions. The server signs each notice
with its notice key (`VIGIL_NOTICE_SIGNING_KEY`); clients verify it (`vigil.protocol.notices`).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from vigil.protocol.contacts import (
    NoticeAction,
    NoticeKey,
    SafetyNoticeBody,
    SignedNotice,
    SignedNoticeList,
)
from vigil.protocol.encoding import b64decode, b64encode
from vigil.protocol.notices import notice_public_key, sign_notice
from vigil.server.context import ServerContext
from vigil.server.db.accounts import UserRow
from vigil.server.db.notices import NoticeRepository, SafetyNoticeRow
from vigil.server.services.accounts import AuthenticatedDevice

__all__ = [
    "ELEVATED_RISK_TEXT",
    "UNCONNECTED_ADULT_TEXT",
    "issue_notice",
    "list_safety_notices",
    "public_notice_key",
]

UNCONNECTED_ADULT_TEXT = (
    "{subject} is an adult you are not connected to. Only accept if you know them in real life. "
    "You can block or report them."
)
ELEVATED_RISK_TEXT = (
    "Be careful with {subject}: this account has been behaving in ways that often come before harm "
    "to young people. Never share photos or move to another app. You can block or report them."
)


def public_notice_key(ctx: ServerContext) -> NoticeKey:
    return NoticeKey(public_key=b64encode(notice_public_key(ctx.notice_key)))


async def issue_notice(
    ctx: ServerContext,
    session: AsyncSession,
    *,
    recipient: UserRow,
    subject: UserRow,
    kind: str,
    text: str,
    now_ms: int,
    actions: tuple[NoticeAction, ...] = (NoticeAction.BLOCK, NoticeAction.REPORT),
) -> SafetyNoticeRow:
    """Signs and stores one notice in the caller's transaction. `text` may name `{subject}`."""
    row = SafetyNoticeRow(
        user_id=recipient.id,
        subject_user_id=subject.id,
        kind=kind,
        payload=b"",
        signature=b"",
        created_at_ms=now_ms,
    )
    await NoticeRepository(session).add_safety_notice(row)
    body = SafetyNoticeBody(
        id=row.id,
        recipient=recipient.username,
        subject=subject.username,
        kind=kind,
        text=text.format(subject=subject.username),
        actions=list(actions),
        created_at_ms=now_ms,
    )
    signed = sign_notice(ctx.notice_key, body)
    row.payload = b64decode(signed.payload, field="payload")
    row.signature = b64decode(signed.signature, field="signature")
    return row


async def list_safety_notices(
    ctx: ServerContext, by: AuthenticatedDevice, after: int = 0
) -> SignedNoticeList:
    async with ctx.sessions() as session:
        rows = await NoticeRepository(session).safety_notices(by.user_id, after)
        return SignedNoticeList(
            notices=[
                SignedNotice(payload=b64encode(r.payload), signature=b64encode(r.signature)) for r in rows
            ]
        )

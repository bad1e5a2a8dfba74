"""Signed safety notices: when an unconnected adult, or an account whose risk is elevated, reaches a
minor, the minor's client shows a notice with block and report actions; an account a reviewer actioned
(warned, restricted, suspended) is told so, and later the outcome of its appeal, in a notice about itself.
The server signs each notice with its notice key (`VIGIL_NOTICE_SIGNING_KEY`); clients verify it
(`vigil.protocol.notices`). A suspended account can still read its notices (`api.deps.AppealingDevice`).
"""

from __future__ import annotations

from collections.abc import Sequence

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
from vigil.server.db.notices import NoticeRepository
from vigil.server.services.accounts import AuthenticatedDevice

__all__ = [
    "ACTION_NOTICE_PREFIX",
    "ACTION_TEXTS",
    "ELEVATED_RISK_TEXT",
    "UNCONNECTED_ADULT_TEXT",
    "issue_action_notice",
    "issue_notice",
    "issue_notices",
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

ACTION_NOTICE_PREFIX = "action_"  # the kind of an action's notice: action_warn, action_restrict, ...
# What the actioned account is told, by the action (`safety.strikes.Sanction` values).
ACTION_TEXTS = {
    "warn": (
        "A message you sent was reported and reviewed by Vigil's safety team. It broke our rules. "
        "Further violations can lead to your account being restricted or suspended. You can appeal this "
        "decision once."
    ),
    "restrict": (
        "After a review by Vigil's safety team, your account is restricted: you cannot start new "
        "conversations or contact minors. Existing conversations with adults continue. You can appeal "
        "this decision once."
    ),
    "suspend": (
        "After a review by Vigil's safety team, your account is suspended: you cannot send or receive "
        "messages. You can appeal this decision once; the answer will arrive here."
    ),
}


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
) -> int:
    """Signs and stores one notice in the caller's transaction; returns its id. `text` may name
    `{subject}`."""
    (notice_id,) = await issue_notices(
        ctx, session, pairs=[(recipient, subject)], kind=kind, text=text, now_ms=now_ms, actions=actions
    )
    return notice_id


async def issue_notices(
    ctx: ServerContext,
    session: AsyncSession,
    *,
    pairs: Sequence[tuple[UserRow, UserRow]],
    kind: str,
    text: str,
    now_ms: int,
    actions: tuple[NoticeAction, ...] = (NoticeAction.BLOCK, NoticeAction.REPORT),
) -> list[int]:
    """Signs and stores a notice to each recipient about its subject (`pairs` of recipient, subject) in
    the caller's transaction, in two statements whatever their number (the signed body carries the row's
    id: the rows go in first, then their signatures); returns their ids. `text` may name `{subject}`."""
    if not pairs:
        return []
    repository = NoticeRepository(session)
    ids = await repository.add_unsigned_safety_notices(
        [
            {
                "user_id": recipient.id,
                "subject_user_id": subject.id,
                "kind": kind,
                "payload": b"",
                "signature": b"",
                "created_at_ms": now_ms,
            }
            for recipient, subject in pairs
        ]
    )
    signed_rows = []
    for notice_id, (recipient, subject) in zip(ids, pairs, strict=True):
        body = SafetyNoticeBody(
            id=notice_id,
            recipient=recipient.username,
            subject=subject.username,
            kind=kind,
            text=text.format(subject=subject.username),
            actions=list(actions),
            created_at_ms=now_ms,
        )
        signed = sign_notice(ctx.notice_key, body)
        signed_rows.append(
            (
                notice_id,
                b64decode(signed.payload, field="payload"),
                b64decode(signed.signature, field="signature"),
            )
        )
    await repository.sign_safety_notices(signed_rows)
    return ids


async def issue_action_notice(
    ctx: ServerContext, session: AsyncSession, *, user: UserRow, action: str, now_ms: int
) -> int:
    """Tells `user`, in a signed notice about their own account, of the action a reviewer took on it
    (`action` is a key of `ACTION_TEXTS`). In the caller's transaction."""
    return await issue_notice(
        ctx,
        session,
        recipient=user,
        subject=user,
        kind=ACTION_NOTICE_PREFIX + action,
        text=ACTION_TEXTS[action],
        now_ms=now_ms,
        actions=(),  # about the account itself: nothing to block or report, only to appeal
    )


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

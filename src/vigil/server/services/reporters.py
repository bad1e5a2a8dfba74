"""Reporters acting in bad faith: a reviewer marks (and a lead clears) an account from a case page its
report reached. A marked reporter's later unverified claims rank "low" (`priority_for`); verified
evidence from them keeps its rank, and what they reported before keeps its priority. Every mark and clear
is audited in the same transaction."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy.ext.asyncio import AsyncSession

from vigil.errors import NotFoundError, ValidationError
from vigil.server.context import ServerContext
from vigil.server.db.accounts import UserRepository
from vigil.server.db.cases import CaseRepository
from vigil.server.db.reporters import BadFaithMarkRow, BadFaithRepository
from vigil.server.services.audit import append_audit

__all__ = ["clear_bad_faith", "is_bad_faith", "mark_bad_faith", "marked_reporters"]

MAX_REASON_CHARS = 500


async def is_bad_faith(session: AsyncSession, user_id: int) -> bool:
    return await BadFaithRepository(session).get(user_id) is not None


async def marked_reporters(ctx: ServerContext, usernames: Collection[str]) -> set[str]:
    """Which of these accounts are marked as reporting in bad faith."""
    async with ctx.sessions() as session:
        return await BadFaithRepository(session).marked_among(usernames)


async def _reporter_of_case(session: AsyncSession, case_id: int, username: str) -> int:
    """The account's id. Raises NotFoundError unless the case exists and holds a report by them (a
    reviewer marks only a reporter whose report they are looking at)."""
    if await CaseRepository(session).get(case_id) is None:
        raise NotFoundError("no such case")
    reports = await CaseRepository(session).reports_of(case_id)
    if username not in {reporter for _report, reporter in reports}:
        raise NotFoundError(f"{username} did not report in this case")
    user = await UserRepository(session).by_username(username)
    if user is None:
        raise NotFoundError(f"no user named {username}")
    return user.id


async def mark_bad_faith(
    ctx: ServerContext, actor: str, reviewer_id: int | None, case_id: int, username: str, reason: str
) -> bool:
    """Marks `username`, a reporter in case `case_id`; returns False when they already were marked.
    Raises NotFoundError (no such case, or no report by them in it), ValidationError (a reason over
    `MAX_REASON_CHARS`)."""
    reason = reason.strip()
    if len(reason) > MAX_REASON_CHARS:
        raise ValidationError(f"the reason has at most {MAX_REASON_CHARS} characters")
    now = ctx.clock_ms()
    async with ctx.sessions() as session, session.begin():
        user_id = await _reporter_of_case(session, case_id, username)
        marks = BadFaithRepository(session)
        if await marks.get(user_id) is not None:
            return False
        marks.add(
            BadFaithMarkRow(
                user_id=user_id,
                marked_by_reviewer_id=reviewer_id,
                case_id=case_id,
                reason=reason,
                created_at_ms=now,
            )
        )
        await append_audit(
            session,
            now_ms=now,
            actor=actor,
            action="reporter.marked_bad_faith",
            target=f"case:{case_id}",
            details={"reporter": username, "reason": reason},
        )
        return True


async def clear_bad_faith(ctx: ServerContext, actor: str, case_id: int, username: str) -> bool:
    """Clears the mark; returns False when there was none. Raises NotFoundError as `mark_bad_faith`."""
    now = ctx.clock_ms()
    async with ctx.sessions() as session, session.begin():
        user_id = await _reporter_of_case(session, case_id, username)
        marks = BadFaithRepository(session)
        if await marks.get(user_id) is None:
            return False
        await marks.remove(user_id)
        await append_audit(
            session,
            now_ms=now,
            actor=actor,
            action="reporter.bad_faith_cleared",
            target=f"case:{case_id}",
            details={"reporter": username},
        )
        return True

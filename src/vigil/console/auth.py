"""Reviewer accounts and console sessions: Argon2id password hashes, random session tokens stored only as
SHA-256, a per-session CSRF token, and lockout after repeated failures."""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from vigil.errors import AuthenticationError, ConflictError, PermissionDenied, ValidationError
from vigil.safety.routing import QueueName
from vigil.server.context import ServerContext
from vigil.server.db.reviewers import ConsoleSessionRow, ReviewerRepository, ReviewerRow
from vigil.server.services.audit import append_audit

__all__ = [
    "LockedOut",
    "Reviewer",
    "Role",
    "SignedIn",
    "create_reviewer",
    "csrf_ok",
    "list_reviewers",
    "mark_revealed",
    "session_for",
    "set_disabled",
    "set_queues",
    "sign_in",
    "sign_out",
]

_HASHER = PasswordHasher()
# Verified against when the username is unknown, so both failures take the same time.
_DUMMY_HASH = _HASHER.hash(secrets.token_hex(16))
MIN_PASSWORD = 12
_NAME = re.compile(r"^[a-z0-9_.-]{3,64}$")


class Role(enum.StrEnum):
    REVIEWER = "reviewer"
    LEAD = "lead"  # also assigns cases and reopens them
    ADMIN = "admin"  # also manages reviewers

    @property
    def rank(self) -> int:
        match self:
            case Role.REVIEWER:
                return 1
            case Role.LEAD:
                return 2
            case Role.ADMIN:
                return 3

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


@dataclass(frozen=True, slots=True)
class Reviewer:
    id: int
    username: str
    role: Role
    queues: tuple[QueueName, ...] = ()  # the queues they may work; empty means every queue

    @property
    def actor(self) -> str:
        return f"reviewer:{self.username}"

    def may_work(self, queue: QueueName) -> bool:
        return not self.queues or queue in self.queues

    @property
    def workable_queues(self) -> list[QueueName]:
        return [q for q in QueueName if self.may_work(q)]


@dataclass(frozen=True, slots=True)
class SignedIn:
    reviewer: Reviewer
    token: str  # the cookie value; only its hash is stored
    csrf: str
    revealed: frozenset[int]


class LockedOut(AuthenticationError):
    code = "locked_out"


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _reviewer(row: ReviewerRow) -> Reviewer:
    queues = tuple(QueueName(q) for q in row.queues.split(",") if q in set(QueueName))
    return Reviewer(row.id, row.username, Role(row.role), queues)


async def create_reviewer(
    ctx: ServerContext, username: str, password: str, role: Role, actor: str
) -> Reviewer:
    """Raises ValidationError for a bad name or a short password, ConflictError for a taken name."""
    if not _NAME.match(username):
        raise ValidationError("reviewer names are 3-64 characters: a-z, 0-9, _ . -")
    if len(password) < MIN_PASSWORD:
        raise ValidationError(f"passwords have at least {MIN_PASSWORD} characters")
    password_hash = _HASHER.hash(password)
    async with ctx.sessions() as session, session.begin():
        reviewers = ReviewerRepository(session)
        if await reviewers.name_taken(username):
            raise ConflictError("that reviewer name is taken")
        row = ReviewerRow(
            username=username,
            password_hash=password_hash,
            role=role.value,
            failed_logins=0,
            locked_until_ms=0,
            disabled=False,
            created_at_ms=ctx.clock_ms(),
        )
        await reviewers.add(row)
        await append_audit(
            session,
            now_ms=ctx.clock_ms(),
            actor=actor,
            action="reviewer.created",
            target=f"reviewer:{username}",
            details={"role": role.value},
        )
        return _reviewer(row)


async def list_reviewers(ctx: ServerContext) -> list[tuple[Reviewer, bool, int]]:
    """(reviewer, disabled, locked until ms) for every reviewer."""
    async with ctx.sessions() as session:
        rows = await ReviewerRepository(session).all()
        return [(_reviewer(r), r.disabled, r.locked_until_ms) for r in rows]


async def set_disabled(ctx: ServerContext, actor: Reviewer, reviewer_id: int, disabled: bool) -> None:
    """Raises PermissionDenied when an admin would disable themself."""
    if reviewer_id == actor.id and disabled:
        raise PermissionDenied("you cannot disable your own account")
    async with ctx.sessions() as session, session.begin():
        reviewers = ReviewerRepository(session)
        row = await reviewers.get(reviewer_id)
        if row is None:
            raise ValidationError("no such reviewer")
        row.disabled = disabled
        if disabled:
            await reviewers.end_sessions_of(reviewer_id)
        await append_audit(
            session,
            now_ms=ctx.clock_ms(),
            actor=actor.actor,
            action="reviewer.disabled" if disabled else "reviewer.enabled",
            target=f"reviewer:{row.username}",
        )


async def set_queues(ctx: ServerContext, actor: Reviewer, reviewer_id: int, queues: list[str]) -> None:
    """Limits a reviewer to `queues` (none: every queue). Raises ValidationError for an unknown queue or
    reviewer."""
    unknown = [q for q in queues if q not in set(QueueName)]
    if unknown:
        raise ValidationError(f"no queue named {unknown[0][:40]!r}")
    async with ctx.sessions() as session, session.begin():
        row = await ReviewerRepository(session).get(reviewer_id)
        if row is None:
            raise ValidationError("no such reviewer")
        row.queues = ",".join(q.value for q in QueueName if q.value in queues)
        await append_audit(
            session,
            now_ms=ctx.clock_ms(),
            actor=actor.actor,
            action="reviewer.queues",
            target=f"reviewer:{row.username}",
            details={"queues": row.queues or "all"},
        )


async def sign_in(ctx: ServerContext, username: str, password: str) -> SignedIn:
    """Raises AuthenticationError (one message for an unknown name, a wrong password or a disabled
    account) and LockedOut after `console_max_failed_logins` failures in a row."""
    settings, now = ctx.settings, ctx.clock_ms()
    async with ctx.sessions() as session:
        row = await ReviewerRepository(session).by_username(username[:64])
    if row is not None and row.locked_until_ms > now:
        raise LockedOut("too many failed attempts; this account is locked for a while")
    try:
        _HASHER.verify(row.password_hash if row is not None else _DUMMY_HASH, password)
        ok = row is not None and not row.disabled
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    async with ctx.sessions() as session, session.begin():
        reviewers = ReviewerRepository(session)
        fresh = None if row is None else await reviewers.get(row.id)
        if fresh is None or not ok:
            locked = False
            if fresh is not None:
                fresh.failed_logins += 1
                if fresh.failed_logins >= settings.console_max_failed_logins:
                    fresh.failed_logins = 0
                    fresh.locked_until_ms = now + settings.console_lockout_minutes * 60_000
                    locked = True
            await append_audit(
                session,
                now_ms=now,
                actor="anonymous",
                action="console.sign_in_failed",
                target=f"reviewer:{username[:64]}",
                details={"locked": locked},
            )
            failure: AuthenticationError = (
                LockedOut("too many failed attempts; this account is locked for a while")
                if locked
                else AuthenticationError("wrong name or password")
            )
        else:
            fresh.failed_logins, fresh.locked_until_ms = 0, 0
            token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            reviewers.add_session(
                ConsoleSessionRow(
                    token_sha256=_token_hash(token),
                    reviewer_id=fresh.id,
                    csrf_token=csrf,
                    revealed="",
                    created_at_ms=now,
                    expires_at_ms=now + settings.console_session_minutes * 60_000,
                )
            )
            await append_audit(
                session,
                now_ms=now,
                actor=f"reviewer:{fresh.username}",
                action="console.signed_in",
                target=f"reviewer:{fresh.username}",
            )
            return SignedIn(_reviewer(fresh), token, csrf, frozenset())
    raise failure


async def session_for(ctx: ServerContext, token: str) -> SignedIn:
    """Raises AuthenticationError for a missing, unknown or expired session or a disabled reviewer."""
    if not token or len(token) > 100:
        raise AuthenticationError("not signed in")
    async with ctx.sessions() as session:
        found = await ReviewerRepository(session).console_session_with_reviewer(_token_hash(token))
    if found is None:
        raise AuthenticationError("not signed in")
    row, reviewer = found
    if row.expires_at_ms <= ctx.clock_ms() or reviewer.disabled:
        raise AuthenticationError("the session has ended")
    revealed = frozenset(int(x) for x in row.revealed.split(",") if x)
    return SignedIn(_reviewer(reviewer), token, row.csrf_token, revealed)


def csrf_ok(signed_in: SignedIn, submitted: str | None) -> bool:
    return submitted is not None and hmac.compare_digest(signed_in.csrf.encode(), submitted.encode())


async def mark_revealed(ctx: ServerContext, signed_in: SignedIn, item_id: int) -> None:
    async with ctx.sessions() as session, session.begin():
        row = await ReviewerRepository(session).console_session(_token_hash(signed_in.token))
        if row is not None:
            row.revealed = ",".join(str(i) for i in sorted(signed_in.revealed | {item_id}))


async def sign_out(ctx: ServerContext, signed_in: SignedIn) -> None:
    async with ctx.sessions() as session, session.begin():
        await ReviewerRepository(session).end_session(_token_hash(signed_in.token))

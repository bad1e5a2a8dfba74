"""The admin-managed policy list review decisions cite. A policy is retired, never deleted, so past
decisions keep naming it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from vigil.errors import ConflictError, NotFoundError, ValidationError
from vigil.server.context import ServerContext
from vigil.server.db.policies import PolicyRepository, PolicyRow
from vigil.server.services.audit import append_audit

__all__ = ["Policy", "add_policy", "list_policies", "set_active"]

_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_.-]{1,31}$")


@dataclass(frozen=True, slots=True)
class Policy:
    id: int
    code: str
    title: str
    active: bool

    @property
    def label(self) -> str:
        return f"{self.code}: {self.title}"


def _policy(row: PolicyRow) -> Policy:
    return Policy(row.id, row.code, row.title, row.active)


async def list_policies(ctx: ServerContext, *, active_only: bool = False) -> list[Policy]:
    async with ctx.sessions() as session:
        rows = await PolicyRepository(session).all()
    return [_policy(r) for r in rows if r.active or not active_only]


async def add_policy(ctx: ServerContext, actor: str, code: str, title: str) -> Policy:
    """Raises ValidationError for a malformed code or title, ConflictError for a taken code."""
    code, title = code.strip().upper(), " ".join(title.split())
    if not _CODE.match(code):
        raise ValidationError("a policy code is 2-32 characters: A-Z, 0-9, _ . -")
    if not 3 <= len(title) <= 200:
        raise ValidationError("a policy title has 3 to 200 characters")
    now = ctx.clock_ms()
    async with ctx.sessions() as session, session.begin():
        policies = PolicyRepository(session)
        if await policies.by_code(code) is not None:
            raise ConflictError(f"policy {code} exists")
        row = await policies.add(PolicyRow(code=code, title=title, active=True, created_at_ms=now))
        await append_audit(
            session,
            now_ms=now,
            actor=actor,
            action="policy.added",
            target=f"policy:{code}",
            details={"title": title},
        )
        return _policy(row)


async def set_active(ctx: ServerContext, actor: str, policy_id: int, active: bool) -> None:
    """Raises NotFoundError."""
    now = ctx.clock_ms()
    async with ctx.sessions() as session, session.begin():
        row = await PolicyRepository(session).get(policy_id)
        if row is None:
            raise NotFoundError("no such policy")
        row.active = active
        await append_audit(
            session,
            now_ms=now,
            actor=actor,
            action="policy.activated" if active else "policy.retired",
            target=f"policy:{row.code}",
        )

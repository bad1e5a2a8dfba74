"""Labels on accounts, put on and taken off from a case (audited on the case)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from vigil.errors import NotFoundError, ValidationError
from vigil.server.context import ServerContext
from vigil.server.db.cases import CaseRepository
from vigil.server.db.labels import AccountLabelRow, LabelRepository
from vigil.server.services.audit import append_audit

__all__ = ["Label", "add_label", "live_labels", "remove_label"]

_LABEL = re.compile(r"^[a-z0-9][a-z0-9_-]{1,39}$")
_DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Label:
    id: int
    label: str
    reviewer_id: int | None
    created_at_ms: int
    expires_at_ms: int | None


async def live_labels(ctx: ServerContext, user_id: int) -> list[Label]:
    """The account's labels that have not expired."""
    async with ctx.sessions() as session:
        rows = await LabelRepository(session).live(user_id, ctx.clock_ms())
    return [Label(r.id, r.label, r.reviewer_id, r.created_at_ms, r.expires_at_ms) for r in rows]


async def add_label(
    ctx: ServerContext, actor: str, reviewer_id: int | None, case_id: int, label: str, days: int | None
) -> None:
    """Labels the case's account, for `days` or (None) until removed. Raises ValidationError,
    NotFoundError."""
    label = label.strip().lower()
    if not _LABEL.match(label):
        raise ValidationError("label: 2-40 characters, a-z, 0-9, _ and -")
    if days is not None and not 1 <= days <= 3650:
        raise ValidationError("label: expiry is 1 to 3650 days")
    now = ctx.clock_ms()
    async with ctx.sessions() as session, session.begin():
        case = await CaseRepository(session).get(case_id)
        if case is None:
            raise NotFoundError("no such case")
        LabelRepository(session).add(
            AccountLabelRow(
                user_id=case.subject_user_id,
                label=label,
                reviewer_id=reviewer_id,
                created_at_ms=now,
                expires_at_ms=None if days is None else now + days * _DAY_MS,
            )
        )
        await append_audit(
            session,
            now_ms=now,
            actor=actor,
            action="account.labelled",
            target=f"case:{case_id}",
            details={"label": label, "days": days},
        )


async def remove_label(ctx: ServerContext, actor: str, case_id: int, label_id: int) -> None:
    """Raises NotFoundError when the label is not on the case's account."""
    now = ctx.clock_ms()
    async with ctx.sessions() as session, session.begin():
        case = await CaseRepository(session).get(case_id)
        labels = LabelRepository(session)
        row = await labels.get(label_id)
        if case is None or row is None or row.user_id != case.subject_user_id:
            raise NotFoundError("no such label on this case's account")
        await labels.delete(row)
        await append_audit(
            session,
            now_ms=now,
            actor=actor,
            action="account.unlabelled",
            target=f"case:{case_id}",
            details={"label": row.label},
        )

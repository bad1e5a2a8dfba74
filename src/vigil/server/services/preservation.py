"""Preservation holds (18 U.S.C. 2258A(h), one year since the REPORT Act): placed when a CyberTipline report
is finished, listed in the console, released only by an admin and only after the hold's date; all audited.

Every retention sweep asks `held_data` (one call per sweep round) what it must skip: the held cases'
reports and evidence, the reported accounts' metadata and image-match records, and the blobs the held
evidence names. A hold stays in force until it is released: the year is a minimum, not an expiry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from vigil.errors import ConflictError, NotFoundError, PermissionDenied
from vigil.server.context import ServerContext
from vigil.server.db.accounts import UserRow
from vigil.server.db.preservation import PreservationHoldRow, PreservationRepository
from vigil.server.services.audit import append_audit

__all__ = [
    "PRESERVATION_DAYS",
    "HeldData",
    "HoldRecord",
    "held_case_ids",
    "held_data",
    "is_held",
    "list_holds",
    "place_hold",
    "release_hold",
]

PRESERVATION_DAYS = 365
_DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class HeldData:
    """What the holds in force cover. Sweeps skip: reports and items of `case_ids` or about `user_ids`,
    metadata events naming `usernames`, blobs in `blob_ids`."""

    case_ids: frozenset[int] = frozenset()
    user_ids: frozenset[int] = frozenset()
    usernames: frozenset[str] = frozenset()
    blob_ids: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class HoldRecord:
    id: int
    case_id: int
    subject: str
    filing_id: int | None
    reason: str
    blobs: int
    created_by: str
    created_at_ms: int
    hold_until_ms: int
    released_at_ms: int | None
    released_by: str | None

    @property
    def in_force(self) -> bool:
        return self.released_at_ms is None


async def held_data(session: AsyncSession) -> HeldData:
    """The union of every hold in force (one query plus one for the account names)."""
    repository = PreservationRepository(session)
    holds = await repository.in_force()
    if not holds:
        return HeldData()
    user_ids = frozenset(h.subject_user_id for h in holds)
    return HeldData(
        case_ids=frozenset(h.case_id for h in holds),
        user_ids=user_ids,
        usernames=frozenset(await repository.usernames(user_ids)),
        blob_ids=frozenset(b for h in holds for b in h.blob_ids.split(",") if b),
    )


async def held_case_ids(session: AsyncSession) -> frozenset[int]:
    return (await held_data(session)).case_ids


async def is_held(session: AsyncSession, *, case_id: int | None = None, user_id: int | None = None) -> bool:
    """Whether a hold in force covers the case or the account."""
    held = await held_data(session)
    return (case_id is not None and case_id in held.case_ids) or (
        user_id is not None and user_id in held.user_ids
    )


async def place_hold(
    session: AsyncSession,
    *,
    case_id: int,
    subject_user_id: int,
    filing_id: int | None,
    reason: str,
    blob_ids: frozenset[str],
    actor: str,
    now_ms: int,
) -> PreservationHoldRow:
    """Places a one-year hold inside the caller's transaction, audited against the case."""
    row = await PreservationRepository(session).add(
        PreservationHoldRow(
            case_id=case_id,
            subject_user_id=subject_user_id,
            filing_id=filing_id,
            reason=reason[:200],
            blob_ids=",".join(sorted(blob_ids)),
            created_by=actor[:80],
            created_at_ms=now_ms,
            hold_until_ms=now_ms + PRESERVATION_DAYS * _DAY_MS,
            released_at_ms=None,
            released_by=None,
        )
    )
    await append_audit(
        session,
        now_ms=now_ms,
        actor=actor,
        action="preservation.hold_placed",
        target=f"case:{case_id}",
        details={"hold": row.id, "filing": filing_id, "until_ms": row.hold_until_ms, "blobs": len(blob_ids)},
    )
    return row


async def _record(session: AsyncSession, row: PreservationHoldRow) -> HoldRecord:
    subject = await session.get(UserRow, row.subject_user_id)
    return HoldRecord(
        id=row.id,
        case_id=row.case_id,
        subject=subject.username if subject is not None else "?",
        filing_id=row.filing_id,
        reason=row.reason,
        blobs=len([b for b in row.blob_ids.split(",") if b]),
        created_by=row.created_by,
        created_at_ms=row.created_at_ms,
        hold_until_ms=row.hold_until_ms,
        released_at_ms=row.released_at_ms,
        released_by=row.released_by,
    )


async def list_holds(ctx: ServerContext) -> list[HoldRecord]:
    """Every hold, newest first (released ones too, for the record)."""
    async with ctx.sessions() as session:
        return [await _record(session, row) for row in await PreservationRepository(session).all()]


async def release_hold(
    ctx: ServerContext, hold_id: int, *, actor: str, is_admin: bool, now: int | None = None
) -> HoldRecord:
    """Releases a hold (its data becomes subject to retention again). `now` is in ms (the context clock by
    default). Raises PermissionDenied unless `is_admin`, NotFoundError, ConflictError when the hold is
    already released or its date has not come."""
    now_ms = ctx.clock_ms() if now is None else now
    async with ctx.sessions() as session, session.begin():
        row = await PreservationRepository(session).get(hold_id)
        if row is None:
            raise NotFoundError(f"no preservation hold {hold_id}")
        if not is_admin:  # the refusal is recorded (this transaction commits), then raised
            await append_audit(
                session,
                now_ms=now_ms,
                actor=actor,
                action="preservation.release_refused",
                target=f"case:{row.case_id}",
                details={"hold": hold_id, "why": "not an admin"},
            )
    if not is_admin:
        raise PermissionDenied("only an admin can release a preservation hold")
    async with ctx.sessions() as session, session.begin():
        row = await PreservationRepository(session).get(hold_id)
        if row is None:
            raise NotFoundError(f"no preservation hold {hold_id}")
        if row.released_at_ms is not None:
            raise ConflictError(f"preservation hold {hold_id} was already released")
        if now_ms < row.hold_until_ms:
            until = datetime.fromtimestamp(row.hold_until_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
            raise ConflictError(f"preservation hold {hold_id} is in force until {until}")
        row.released_at_ms, row.released_by = now_ms, actor[:80]
        await append_audit(
            session,
            now_ms=now_ms,
            actor=actor,
            action="preservation.hold_released",
            target=f"case:{row.case_id}",
            details={"hold": hold_id},
        )
        return await _record(session, row)

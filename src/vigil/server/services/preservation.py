"""Preservation holds (18 U.S.C. 2258A(h), one year since the REPORT Act): placed when a CyberTipline report
is finished, listed in the console, released only by an admin and only after the hold's date; all audited.

Placing a hold copies what it keeps into the case (issue 16): the case's reports and reported items and the
reported account's username, group membership periods, the delivery records and metadata events of what it
sent and of what was sent to it (direct, or to a group while it was a member: 2258A(h) asks for the report
and related data, and the messages a reported account received are as related as those it sent), contact
requests, safety notices about it, vouchers and image-match cases, as they stand at that moment, sealed as
one case evidence item under the case's own key (`case_evidence`, kind `preserved_data`). The originals
then follow their normal retention and account deletion like anyone else's; the copy lives until an admin
releases the hold (after its date), which erases it. The audit log only references the copy by id, so
erasing it leaves `vigil audit verify` passing.

Attachment blobs are the one thing pinned in place rather than copied: `held_data().blob_ids` is what the
blob sweep and account deletion skip. A blob is end-to-end ciphertext the server cannot read (its key is in
the sealed reported item), it can be large (copying it would double the storage of exactly the material we
least want more copies of), and the blob backends (disk, database chunks, S3) already give it one owner and
one deletion path; the pin goes with the hold.

A hold stays in force until it is released: the year is a minimum, not an expiry.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from vigil.errors import ConflictError, NotFoundError, PermissionDenied
from vigil.server.context import ServerContext
from vigil.server.db.accounts import UserRow
from vigil.server.db.case_evidence import CaseEvidenceRepository
from vigil.server.db.preservation import PreservationHoldRow, PreservationRepository
from vigil.server.db.pseudonyms import pseudonym
from vigil.server.services.audit import append_audit
from vigil.server.services.case_evidence import EvidenceKind, read_case_evidence, store_case_evidence
from vigil.server.services.metadata import LOG_RESOLUTION_MS

__all__ = [
    "PRESERVATION_DAYS",
    "HeldData",
    "HoldRecord",
    "copy_uncopied_holds",
    "held_case_ids",
    "held_data",
    "is_held",
    "list_holds",
    "place_hold",
    "preserved_copies",
    "release_hold",
]

PRESERVATION_DAYS = 365
_DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class HeldData:
    """What the holds in force cover: the blob sweep and account deletion skip `blob_ids` (pinned, not
    copied); everything else a hold keeps is in its case copy, so nothing else is skipped."""

    case_ids: frozenset[int] = frozenset()
    user_ids: frozenset[int] = frozenset()
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
    """The union of every hold in force (one query)."""
    holds = await PreservationRepository(session).in_force()
    if not holds:
        return HeldData()
    return HeldData(
        case_ids=frozenset(h.case_id for h in holds),
        user_ids=frozenset(h.subject_user_id for h in holds),
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


def _jsonable(value: object) -> object:
    """A column value as JSON: bytes (ciphertexts, tags, signatures) as base64."""
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode()}
    return value


def preserved_document(
    *,
    hold_case_id: int,
    subject: UserRow,
    alias: str,
    blob_ids: frozenset[str],
    now_ms: int,
    records: dict[str, list[dict[str, Any]]],
) -> bytes:
    """The sealed copy's plaintext: who and when, then every kept row by table, column by column."""
    document = {
        "preserved_at_ms": now_ms,
        "case_id": hold_case_id,
        "subject": {
            "user_id": subject.id,
            "username": subject.username,
            "pseudonym": alias,
            "age_band": subject.age_band,
            "created_at_ms": subject.created_at_ms,
        },
        "pinned_blob_ids": sorted(blob_ids),
        "tables": {
            table: [{column: _jsonable(value) for column, value in row.items()} for row in rows]
            for table, rows in records.items()
        },
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


async def _copy_into_case(
    ctx: ServerContext, session: AsyncSession, row: PreservationHoldRow, *, actor: str, now_ms: int
) -> int:
    """Seals what `row` keeps into its case; returns the evidence id (also set on the hold)."""
    subject = await session.get(UserRow, row.subject_user_id)
    if subject is None:
        raise NotFoundError(f"no account {row.subject_user_id} to preserve")
    alias = pseudonym(ctx.pseudonym_key, subject.id)
    records = await PreservationRepository(session).held_records(
        case_id=row.case_id,
        user_id=subject.id,
        username=subject.username,
        alias=alias,
        log_resolution_ms=LOG_RESOLUTION_MS,
    )
    blob_ids = frozenset(b for b in row.blob_ids.split(",") if b)
    content = preserved_document(
        hold_case_id=row.case_id,
        subject=subject,
        alias=alias,
        blob_ids=blob_ids,
        now_ms=now_ms,
        records=records,
    )
    row.evidence_id = await store_case_evidence(
        ctx.report_key,
        session,
        case_id=row.case_id,
        kind=EvidenceKind.PRESERVED_DATA,
        author=actor,
        content=content,
        now_ms=now_ms,
    )
    return row.evidence_id


async def place_hold(
    ctx: ServerContext,
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
    """Places a one-year hold inside the caller's transaction and copies what it keeps into the case (module
    docstring); audited against the case, with the copy's evidence id and row counts only."""
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
    evidence_id = await _copy_into_case(ctx, session, row, actor=actor, now_ms=now_ms)
    await append_audit(
        session,
        now_ms=now_ms,
        actor=actor,
        action="preservation.hold_placed",
        target=f"case:{case_id}",
        details={
            "hold": row.id,
            "filing": filing_id,
            "until_ms": row.hold_until_ms,
            "blobs": len(blob_ids),
            "evidence": evidence_id,
        },
    )
    return row


async def copy_uncopied_holds(ctx: ServerContext) -> int:
    """Copies into their cases the holds in force placed before holds copied (migration 0021), which kept
    their data in place; call at start-up before the retention sweeps. Returns how many it copied."""
    copied = 0
    async with ctx.sessions() as session, session.begin():
        for row in await PreservationRepository(session).in_force():
            if row.evidence_id is None:
                evidence_id = await _copy_into_case(
                    ctx, session, row, actor="system:preservation", now_ms=ctx.clock_ms()
                )
                await append_audit(
                    session,
                    now_ms=ctx.clock_ms(),
                    actor="system:preservation",
                    action="preservation.copied",
                    target=f"case:{row.case_id}",
                    details={"hold": row.id, "evidence": evidence_id},
                )
                copied += 1
    return copied


async def preserved_copies(ctx: ServerContext, case_id: int) -> list[dict[str, Any]]:
    """The preserved copies of the case's holds, decrypted (for reviewers and exports), oldest first."""
    async with ctx.sessions() as session:
        sealed = await read_case_evidence(ctx.report_key, session, case_id)
    return [
        json.loads(content) for _id, kind, _a, _at, content in sealed if kind is EvidenceKind.PRESERVED_DATA
    ]


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
    """Releases a hold and erases its case copy (the originals went by their own retention); the pinned
    blobs become subject to retention again. `now` is in ms (the context clock by default). Raises
    PermissionDenied unless `is_admin`, NotFoundError, ConflictError when the hold is already released or
    its date has not come."""
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
        erased = 0
        if row.evidence_id is not None:
            erased = await CaseEvidenceRepository(session).delete_item(row.evidence_id)
        await append_audit(
            session,
            now_ms=now_ms,
            actor=actor,
            action="preservation.hold_released",
            target=f"case:{row.case_id}",
            details={"hold": hold_id, "evidence_erased": row.evidence_id if erased else None},
        )
        return await _record(session, row)

"""Case evidence under per-case keys (issue 16): reviewers' action notes and the metadata timeline a risk
case starts with are sealed under the case's own key and stored once; the audit entry that records the
action carries only the evidence's id. `erase_case_evidence` deletes a case's evidence and its key, so
the content is gone for good while `vigil audit verify` still passes (the chain never held it).

Each case key is 32 random bytes, wrapped under the report key (`VIGIL_REPORT_KEY`) with associated data
naming the case; content is bound to its case and kind the same way (`vigil.server.services.evidence`).
"""

from __future__ import annotations

import enum
import json
import os

from sqlalchemy.ext.asyncio import AsyncSession

from vigil.errors import ConflictError, NotFoundError
from vigil.server.context import ServerContext
from vigil.server.db.case_evidence import CaseEvidenceRepository, CaseEvidenceRow, CaseKeyRow
from vigil.server.db.cases import CaseRepository
from vigil.server.db.preservation import PreservationRepository
from vigil.server.services.audit import append_audit
from vigil.server.services.evidence import EvidenceBox

__all__ = [
    "CaseEvidence",
    "EvidenceKind",
    "erase_case_evidence",
    "preserved_summary",
    "read_case_evidence",
    "store_case_evidence",
]


class EvidenceKind(enum.StrEnum):
    ACTION_NOTE = "action_note"  # what a reviewer wrote with a decision
    RISK_TIMELINE = "risk_timeline"  # the metadata events a risk case was opened on (JSON records)
    APPEAL_REASON = "appeal_reason"  # what the user wrote when appealing an action on their account
    PRESERVED_DATA = "preserved_data"  # what a preservation hold keeps (`services.preservation`; JSON)


CaseEvidence = tuple[int, EvidenceKind, str, int, bytes]  # (id, kind, author, created_at_ms, plaintext)


async def _case_box(report_key: bytes, session: AsyncSession, case_id: int, now_ms: int) -> EvidenceBox:
    """The case's key (created on first use), unwrapped. Raises StorageError if it does not unwrap."""
    keys = CaseEvidenceRepository(session)
    wrapper = EvidenceBox(report_key)
    row = await keys.key(case_id)
    if row is None:
        key = os.urandom(32)
        await keys.add_key(
            CaseKeyRow(
                case_id=case_id, wrapped_key=wrapper.seal(key, f"case_key:{case_id}"), created_at_ms=now_ms
            )
        )
        return EvidenceBox(key)
    return EvidenceBox(wrapper.open(row.wrapped_key, f"case_key:{case_id}"))


async def store_case_evidence(
    report_key: bytes,
    session: AsyncSession,
    *,
    case_id: int,
    kind: EvidenceKind,
    author: str,
    content: bytes,
    now_ms: int,
) -> int:
    """Seals `content` under the case's key in the caller's transaction; returns the evidence id that the
    audit entry references."""
    box = await _case_box(report_key, session, case_id, now_ms)
    row = await CaseEvidenceRepository(session).add(
        CaseEvidenceRow(
            case_id=case_id,
            kind=kind.value,
            author=author[:80],
            body_enc=box.seal(content, f"case_evidence:{case_id}:{kind.value}"),
            created_at_ms=now_ms,
        )
    )
    return row.id


def preserved_summary(content: bytes) -> str:
    """One line for a preserved copy (`services.preservation`): whose data, and how many rows per table."""
    document = json.loads(content)
    tables = ", ".join(f"{len(rows)} {table}" for table, rows in sorted(document["tables"].items()))
    return f"copy of {document['subject']['username']}'s records: {tables}"


async def read_case_evidence(report_key: bytes, session: AsyncSession, case_id: int) -> list[CaseEvidence]:
    """The case's evidence, oldest first (none once erased). Raises StorageError on tampering."""
    rows = await CaseEvidenceRepository(session).of_case(case_id)
    if not rows:
        return []
    box = await _case_box(report_key, session, case_id, rows[0].created_at_ms)
    return [
        (
            row.id,
            EvidenceKind(row.kind),
            row.author,
            row.created_at_ms,
            box.open(row.body_enc, f"case_evidence:{case_id}:{row.kind}"),
        )
        for row in rows
    ]


async def erase_case_evidence(ctx: ServerContext, actor: str, case_id: int) -> int:
    """Deletes the case's evidence and its key (audited, by count only); returns how many items went.
    Raises NotFoundError, ConflictError while a preservation hold is in force on the case (its copy is
    case evidence; releasing the hold erases it)."""
    async with ctx.sessions() as session, session.begin():
        if await CaseRepository(session).get(case_id) is None:
            raise NotFoundError("no such case")
        if await PreservationRepository(session).in_force_for_case(case_id):
            raise ConflictError("a preservation hold is in force on this case: an admin releases it first")
        erased = await CaseEvidenceRepository(session).erase(case_id)
        await append_audit(
            session,
            now_ms=ctx.clock_ms(),
            actor=actor,
            action="case.evidence_erased",
            target=f"case:{case_id}",
            details={"items": erased},
        )
    return erased

"""Filing a case to NCMEC's CyberTipline (issue 9): the one service the console and `vigil cybertip` use.

What the console (and the CLI) call:
- `prepare_filing(ctx, case_id, incident_type=..., classifications=..., actor=...)` -> `FilingPreview`:
  the exact `<report>` and one `<fileDetails>` per file that would be sent, and the file list (keys such
  as "item:12" / "match:3", hashes, match facts, whether a reviewer's reveal is audited). Nothing is sent
  or stored. Call it with `classifications={}` first to learn the file keys. Raises a
  `CyberTiplineDocumentError` (a ValidationError with `.field`) for a bad incident type or classification.
- `file_report(...)` (same arguments) -> `FilingRecord`: persists the filing and runs /submit -> /upload
  -> /fileinfo -> /finish. Idempotent per case: when every file of the case is in a finished report, that
  report is returned and nothing is sent (`prepare_filing` raises `AlreadyReported`, a ConflictError);
  evidence that arrived later goes in a new report of its own. A case being filed right now (another
  reviewer, the CLI, a worker) raises ConflictError. NCMEC's refusals raise
  `CyberTiplineRefused` with NCMEC's code (never content); outages raise `CyberTiplineUnavailable`.
- `list_filings(ctx)`, `get_filing(ctx, filing_id)`: the reports page.
- `list_holds(ctx)`, `release_hold(ctx, hold_id, actor=..., is_admin=..., now=...)`: preservation holds
  (`vigil.server.services.preservation`).
- `recover_unfinished_filings(ctx)`: crash recovery; the server runs it at start-up and periodically.

Durability: the filing row and its files are committed before /submit; NCMEC's report id is committed on
its own as soon as /submit answers, each file id as soon as /upload answers. Every CyberTipline call
(endpoint, HTTP status, NCMEC code, Request-ID) and every state change goes to the audit log.

Crash recovery: a filer holds a per-case lease, renewed before every call. A filing left unfinished whose
lease ran out is taken over: with every file uploaded and inside NCMEC's window it is finished, otherwise
retracted; NCMEC's "already finished" (5102) and "already retracted" (5101) answers settle it as such, so
nothing is filed twice. A filing interrupted during /submit has no report id to act on: it is marked
outcome-unknown (any report NCMEC opened then stays unfinished and NCMEC deletes it within 24 h).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from vigil.errors import ConflictError, NotFoundError, VigilError
from vigil.safety.ncmec import IncidentType
from vigil.server.context import ServerContext
from vigil.server.cybertipline import CyberTiplineClient
from vigil.server.db.accounts import UserRow
from vigil.server.db.cybertip import CyberTipFilingRepository, CyberTipFilingRow
from vigil.server.services.audit import append_audit
from vigil.server.services.cybertip_documents import (
    AlreadyReported,
    FileClassification,
    FilePreview,
    FilingPreview,
    prepare,
)
from vigil.server.services.cybertip_steps import (
    FINISH_WINDOW_MS,
    MEANING,
    UNFINISHED,
    Filer,
    FilingOptions,
    FilingState,
    release_lease,
    report_context,
    take_lease,
)
from vigil.server.services.evidence import evidence_box
from vigil.server.services.preservation import HoldRecord, list_holds, release_hold

__all__ = [
    "FINISH_WINDOW_MS",
    "MEANING",
    "AlreadyReported",
    "FileClassification",
    "FilePreview",
    "FilingFile",
    "FilingOptions",
    "FilingPreview",
    "FilingRecord",
    "FilingState",
    "HoldRecord",
    "file_report",
    "get_filing",
    "list_filings",
    "list_holds",
    "prepare_filing",
    "recover_unfinished_filings",
    "release_hold",
]

log = logging.getLogger("vigil.server.cybertip_filing")
RECOVERY_ACTOR = "system:cybertip-recovery"


@dataclass(frozen=True, slots=True)
class FilingFile:
    position: int
    source: str
    source_id: int
    filename: str
    sha256: str
    classification: str | None
    viewed_by_esp: bool
    ncmec_file_id: str | None
    details_sent: bool


@dataclass(frozen=True, slots=True)
class FilingRecord:
    id: int
    case_id: int
    subject: str
    state: str
    incident_type: str
    ncmec_report_id: int | None
    ncmec_code: int | None
    ncmec_description: str | None
    attempts: int
    retries: int
    recoveries: int
    filed_by: str
    base_url: str
    is_test: bool
    created_at_ms: int
    updated_at_ms: int
    submitted_at_ms: int | None
    finished_at_ms: int | None
    files: list[FilingFile]


# -- preview and records -------------------------------------------------------------------------------------


async def prepare_filing(
    ctx: ServerContext,
    case_id: int,
    *,
    incident_type: IncidentType | str,
    classifications: Mapping[str, FileClassification],
    actor: str,
) -> FilingPreview:
    """What `file_report` would send, validated; nothing is sent or stored (the preview is audited).
    Raises NotFoundError, ValidationError (no reportable evidence), CyberTiplineDocumentError (`.field`
    names the offending field), StorageError (evidence that does not decrypt)."""
    prepared = await prepare(ctx, case_id, incident_type, classifications)
    async with ctx.sessions() as session, session.begin():
        await append_audit(
            session,
            now_ms=ctx.clock_ms(),
            actor=actor,
            action="cybertip.previewed",
            target=f"case:{case_id}",
            details={"incident_type": prepared.preview.incident_type, "files": len(prepared.rows)},
        )
    return prepared.preview


async def _record(session: AsyncSession, row: CyberTipFilingRow) -> FilingRecord:
    subject = await session.get(UserRow, row.subject_user_id)
    files = await CyberTipFilingRepository(session).files_of(row.id)
    return FilingRecord(
        id=row.id,
        case_id=row.case_id,
        subject=subject.username if subject is not None else "?",
        state=row.state,
        incident_type=row.incident_type,
        ncmec_report_id=row.ncmec_report_id,
        ncmec_code=row.ncmec_code,
        ncmec_description=row.ncmec_description,
        attempts=row.attempts,
        retries=row.retries,
        recoveries=row.recoveries,
        filed_by=row.filed_by,
        base_url=row.base_url,
        is_test=row.is_test,
        created_at_ms=row.created_at_ms,
        updated_at_ms=row.updated_at_ms,
        submitted_at_ms=row.submitted_at_ms,
        finished_at_ms=row.finished_at_ms,
        files=[
            FilingFile(
                f.position,
                f.source,
                f.source_id,
                f.filename,
                f.sha256,
                f.classification,
                f.viewed_by_esp,
                f.ncmec_file_id,
                f.details_sent,
            )
            for f in files
        ],
    )


async def list_filings(ctx: ServerContext, *, case_id: int | None = None) -> list[FilingRecord]:
    """Every filing (or the case's), newest first."""
    async with ctx.sessions() as session:
        repository = CyberTipFilingRepository(session)
        rows = (
            await repository.all() if case_id is None else list(reversed(await repository.of_case(case_id)))
        )
        return [await _record(session, row) for row in rows]


async def get_filing(ctx: ServerContext, filing_id: int) -> FilingRecord:
    """Raises NotFoundError."""
    async with ctx.sessions() as session:
        row = await CyberTipFilingRepository(session).get(filing_id)
        if row is None:
            raise NotFoundError(f"no CyberTipline filing {filing_id}")
        return await _record(session, row)


# -- filing and recovery -------------------------------------------------------------------------------------


async def _create_draft(
    ctx: ServerContext,
    case_id: int,
    incident_type: IncidentType | str,
    classifications: Mapping[str, FileClassification],
    actor: str,
) -> tuple[int, dict[str, bytes]]:
    prepared = await prepare(ctx, case_id, incident_type, classifications)
    now = ctx.clock_ms()
    async with ctx.sessions() as session, session.begin():
        repo = CyberTipFilingRepository(session)
        row = await repo.add(
            CyberTipFilingRow(
                case_id=case_id,
                subject_user_id=prepared.subject_id,
                state=FilingState.DRAFT.value,
                incident_type=prepared.preview.incident_type,
                base_url=prepared.preview.base_url[:255],
                is_test=prepared.preview.is_test,
                report_enc=b"",
                attempts=0,
                retries=0,
                recoveries=0,
                filed_by=actor[:80],
                created_at_ms=now,
                updated_at_ms=now,
            )
        )
        row.report_enc = evidence_box(ctx).seal(prepared.report_xml, report_context(row.id))
        for file_row in prepared.rows:
            file_row.filing_id = row.id
        await repo.add_files(prepared.rows)
        await append_audit(
            session,
            now_ms=now,
            actor=actor,
            action="cybertip.state_changed",
            target=f"case:{case_id}",
            details={
                "filing": row.id,
                "from": None,
                "to": FilingState.DRAFT.value,
                "files": len(prepared.rows),
            },
        )
        return row.id, prepared.contents


async def file_report(
    ctx: ServerContext,
    case_id: int,
    *,
    incident_type: IncidentType | str,
    classifications: Mapping[str, FileClassification],
    actor: str,
    options: FilingOptions | None = None,
) -> FilingRecord:
    """Files the case to the CyberTipline and returns the filing (finished on success). Idempotent per case:
    when every file is in a finished report, that filing is returned; otherwise the files not reported yet
    are filed. An abandoned filing of the case (its filer died) is recovered first. Raises
    ConflictError while another filer holds the case, the errors of `prepare_filing`, CyberTiplineRefused
    (NCMEC's code; the filing is failed or retracted), CyberTiplineUnavailable / OutcomeUnknown (the filing
    keeps its state; recovery completes or retracts it), CyberTiplineError when credentials are missing."""
    options = options or FilingOptions()
    await CyberTiplineClient.from_settings(ctx.settings).aclose()  # credentials first: nothing stored without
    owner = secrets.token_hex(16)
    if not await take_lease(ctx, case_id, owner):
        raise ConflictError(f"case {case_id} is being filed to the CyberTipline right now; try again later")
    try:
        async with ctx.sessions() as session:
            earlier = list(await CyberTipFilingRepository(session).of_case(case_id))
        for row in earlier:
            if row.state in UNFINISHED:  # its filer died: settle it before anything new is filed
                await _recover_one(ctx, row.id, case_id, owner, options)
        try:
            filing_id, contents = await _create_draft(ctx, case_id, incident_type, classifications, actor)
        except AlreadyReported as done:  # filing again is a no-op: the finished report is the answer
            return await get_filing(ctx, done.filing_id)
        filer = Filer(ctx, filing_id, case_id, owner, actor, options)
        async with filer.client:
            await filer.drive(contents)
        return await get_filing(ctx, filing_id)
    finally:
        await release_lease(ctx, case_id, owner)


async def _recover_one(
    ctx: ServerContext, filing_id: int, case_id: int, owner: str, options: FilingOptions
) -> FilingRecord:
    filer = Filer(ctx, filing_id, case_id, owner, RECOVERY_ACTOR, options)
    async with filer.client:
        row, _files = await filer.load()
        if row.state not in UNFINISHED:
            return await get_filing(ctx, filing_id)
        await filer.commit(recoveries=row.recoveries + 1)
        try:
            await filer.drive(None)
        except VigilError as error:
            log.warning("cybertip recovery of filing %d not done yet: %s", filing_id, type(error).__name__)
    return await get_filing(ctx, filing_id)


async def recover_unfinished_filings(
    ctx: ServerContext, options: FilingOptions | None = None
) -> list[FilingRecord]:
    """Takes over every unfinished filing whose lease ran out (its filer died or gave up): finishes it when
    every file is uploaded and NCMEC's window is open, retracts it otherwise, exactly once. Filings another
    filer holds are left alone. Returns the filings it touched. Needs the CyberTipline credentials."""
    options = options or FilingOptions()
    if not ctx.settings.cybertipline_username or ctx.settings.cybertipline_password is None:
        return []
    async with ctx.sessions() as session:
        pending = [(r.id, r.case_id) for r in await CyberTipFilingRepository(session).in_states(UNFINISHED)]
    touched = []
    for filing_id, case_id in pending:
        owner = secrets.token_hex(16)
        if not await take_lease(ctx, case_id, owner):
            continue
        try:
            touched.append(await _recover_one(ctx, filing_id, case_id, owner, options))
        finally:
            await release_lease(ctx, case_id, owner)
    return touched

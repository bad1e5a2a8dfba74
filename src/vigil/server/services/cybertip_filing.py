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

import enum
import hashlib
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from vigil.errors import ConflictError, NotFoundError, StorageError, VigilError
from vigil.safety.ncmec import IncidentType, file_details_xml
from vigil.server.context import ServerContext
from vigil.server.cybertipline import (
    CallRecord,
    CyberTiplineClient,
    CyberTiplineError,
    CyberTiplineOutcomeUnknown,
    CyberTiplineRefused,
    RetryPolicy,
    Sleep,
)
from vigil.server.db.accounts import UserRow
from vigil.server.db.cybertip import CyberTipFileRow, CyberTipFilingRepository, CyberTipFilingRow
from vigil.server.services.audit import append_audit
from vigil.server.services.cybertip_documents import (
    AlreadyReported,
    FileClassification,
    FilePreview,
    FilingPreview,
    build_file_details,
    prepare,
    referenced_blob_ids,
)
from vigil.server.services.evidence import evidence_box
from vigil.server.services.preservation import HoldRecord, list_holds, place_hold, release_hold

__all__ = [
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

_HOUR_MS = 3600 * 1000
# NCMEC deletes an unfinished report 24 h after it was opened at the earliest; recovery finishes a report
# only with a margin left, and retracts it otherwise.
FINISH_WINDOW_MS = 23 * _HOUR_MS
RECOVERY_ACTOR = "system:cybertip-recovery"


class FilingState(enum.StrEnum):
    DRAFT = "draft"  # stored, /submit not answered yet
    SUBMITTED = "submitted"  # NCMEC's report id stored
    UPLOADING = "uploading"  # files going up (each file id stored as it comes back)
    FINISHED = "finished"
    RETRACTED = "retracted"
    FAILED = "failed"  # NCMEC refused (its code and description are kept) or the report expired there
    OUTCOME_UNKNOWN = "outcome-unknown"  # /submit may have reached NCMEC; any report it opened expires


UNFINISHED = (FilingState.DRAFT, FilingState.SUBMITTED, FilingState.UPLOADING)

MEANING = {  # NCMEC's response codes in words, for reviewers (spec §3)
    1000: "server error",
    1100: "save failed",
    1110: "upload failed",
    1111: "file upload failed",
    1210: "resource not found",
    1300: "update failed",
    2000: "authentication required",
    3000: "not authorized",
    3100: "not authorized to make submissions",
    3300: "not authorized to make updates",
    4000: "invalid request",
    4100: "validation failed",
    4110: "malformed XML",
    4200: "malformed file",
    5001: "report does not exist",
    5002: "file does not exist",
    5101: "report already retracted",
    5102: "report already finished",
}
_ALREADY_RETRACTED, _ALREADY_FINISHED, _NO_SUCH_REPORT = 5101, 5102, 5001


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


@dataclass(frozen=True)
class FilingOptions:
    """How filing talks to NCMEC. Tests shorten the timeout and the backoff."""

    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(attempts=4, base_delay=0.5, max_delay=8.0))
    timeout: float = 30.0
    sleep: Sleep | None = None


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


# -- the lease -----------------------------------------------------------------------------------------------


async def _take_lease(ctx: ServerContext, case_id: int, owner: str) -> bool:
    now = ctx.clock_ms()
    until = now + int(ctx.settings.cybertipline_lease_seconds * 1000)
    async with ctx.sessions() as session, session.begin():
        return await CyberTipFilingRepository(session).take_lease(case_id, owner, now, until)


async def _release_lease(ctx: ServerContext, case_id: int, owner: str) -> None:
    async with ctx.sessions() as session, session.begin():
        await CyberTipFilingRepository(session).release_lease(case_id, owner)


# -- the filer: one filing driven through NCMEC's steps ------------------------------------------------------


def _report_context(filing_id: int) -> str:
    return f"cybertip_filing:{filing_id}:report"


def _file_key(row: CyberTipFileRow) -> str:
    return f"{'item' if row.source == 'report_item' else 'match'}:{row.source_id}"


class _Filer:
    """Drives one filing while holding its case's lease. Every step commits what NCMEC answered, with the
    calls it took, before the next step starts."""

    def __init__(
        self, ctx: ServerContext, filing_id: int, case_id: int, owner: str, actor: str, options: FilingOptions
    ) -> None:
        self.ctx, self.filing_id, self.case_id, self.owner, self.actor = ctx, filing_id, case_id, owner, actor
        self.calls: list[CallRecord] = []
        self.client = CyberTiplineClient.from_settings(
            ctx.settings,
            recorder=self.calls.append,
            retry=options.retry,
            timeout=options.timeout,
            sleep=options.sleep,
        )

    async def renew(self) -> None:
        """Raises ConflictError when the lease was lost (it ran out and another filer took over)."""
        if not await _take_lease(self.ctx, self.case_id, self.owner):
            raise ConflictError(f"lost the CyberTipline filing lease on case {self.case_id}; stopped")

    async def load(self) -> tuple[CyberTipFilingRow, list[CyberTipFileRow]]:
        async with self.ctx.sessions() as session:
            repo = CyberTipFilingRepository(session)
            row = await repo.get(self.filing_id)
            if row is None:
                raise NotFoundError(f"no CyberTipline filing {self.filing_id}")
            return row, list(await repo.files_of(self.filing_id))

    async def commit(
        self,
        *,
        state: FilingState | None = None,
        note: str | None = None,
        error: CyberTiplineError | None = None,
        file_updates: Mapping[int, Mapping[str, Any]] | None = None,
        **fields: Any,
    ) -> CyberTipFilingRow:
        """One transaction: the calls made since the last commit (audited, counted), the fields, NCMEC's
        code from `error`, file updates, and a state change (audited; a finish also places the hold)."""
        now = self.ctx.clock_ms()
        async with self.ctx.sessions() as session, session.begin():
            repo = CyberTipFilingRepository(session)
            row = await repo.get(self.filing_id)
            assert row is not None
            for call in self.calls:
                row.attempts += 1
                row.retries += 1 if call.attempt > 1 else 0
                await append_audit(
                    session,
                    now_ms=now,
                    actor=self.actor,
                    action="cybertip.call",
                    target=f"cybertip:{row.id}",
                    details={
                        "endpoint": call.endpoint,
                        "attempt": call.attempt,
                        "http_status": call.http_status,
                        "ncmec_code": call.response_code,
                        "request_id": call.request_id,
                        "report_id": call.report_id,
                        "file_id": call.file_id,
                        "error": call.error,
                    },
                )
            self.calls.clear()
            if error is not None:
                row.ncmec_code = error.ncmec_code
                row.ncmec_description = (error.description or error.detail)[:500]
                row.ncmec_request_id = error.request_id
            for name, value in fields.items():
                setattr(row, name, value)
            for file_row_id, updates in (file_updates or {}).items():
                file_row = await repo.file(file_row_id)
                assert file_row is not None
                for name, value in updates.items():
                    setattr(file_row, name, value)
            row.updated_at_ms = now
            if state is not None and state.value != row.state:
                previous, row.state = row.state, state.value
                details: dict[str, object] = {
                    "filing": row.id,
                    "from": previous,
                    "to": state.value,
                    "ncmec_report_id": row.ncmec_report_id,
                    "ncmec_code": row.ncmec_code,
                }
                if note:
                    details["note"] = note
                await append_audit(
                    session,
                    now_ms=now,
                    actor=self.actor,
                    action="cybertip.state_changed",
                    target=f"case:{row.case_id}",
                    details=details,
                )
                if state is FilingState.FINISHED:
                    row.finished_at_ms = now
                    await place_hold(
                        session,
                        case_id=row.case_id,
                        subject_user_id=row.subject_user_id,
                        filing_id=row.id,
                        reason=f"CyberTipline report {row.ncmec_report_id} finished (18 U.S.C. 2258A(h))",
                        blob_ids=await referenced_blob_ids(self.ctx, session, row.case_id),
                        actor=self.actor,
                        now_ms=now,
                    )
            return row

    def shown(self, error: CyberTiplineError, state: FilingState | str) -> CyberTiplineError:
        """The error for the reviewer: the endpoint, NCMEC's code and its meaning, the Request-ID and what
        became of the filing; never NCMEC's free-text description (it may quote the document)."""
        code = error.ncmec_code
        if code is not None:
            what = f"NCMEC code {code} ({MEANING.get(code, 'unlisted code')})"
        elif error.http_status is not None:
            what = f"HTTP {error.http_status}"
        else:
            what = error.detail.split(": ", 1)[-1]
        return type(error)(
            error.endpoint,
            f"{what}; CyberTipline filing {self.filing_id} is {FilingState(state).value}",
            http_status=error.http_status,
            ncmec_code=code,
            description="",
            request_id=error.request_id,
        )

    # -- the steps -----------------------------------------------------------------------------------------

    async def drive(self, contents: Mapping[str, bytes] | None) -> CyberTipFilingRow:
        """From wherever the filing is to finished. `contents` (file key -> bytes) is None in recovery:
        then a file not uploaded yet means the report is retracted. Raises CyberTiplineError (shown form),
        ConflictError (lease lost), StorageError."""
        row, files = await self.load()
        if row.ncmec_report_id is None:
            if contents is None:
                return await self.commit(
                    state=FilingState.OUTCOME_UNKNOWN,
                    note="interrupted during /submit; NCMEC deletes a report it opened, unfinished, in 24 h",
                )
            row = await self.submit(row)
        assert row.ncmec_report_id is not None and row.submitted_at_ms is not None
        report_id = row.ncmec_report_id
        if self.ctx.clock_ms() - row.submitted_at_ms > FINISH_WINDOW_MS:
            return await self.retract(report_id, "too close to NCMEC's 24-hour expiry to finish")
        missing = [f for f in files if f.ncmec_file_id is None]
        if missing and contents is None:
            return await self.retract(report_id, "interrupted before every file was uploaded")
        if missing or row.state != FilingState.UPLOADING:
            row = await self.commit(state=FilingState.UPLOADING)
        for file_row in missing:
            assert contents is not None
            await self.upload(report_id, file_row, contents.get(_file_key(file_row)))
        row, files = await self.load()
        for file_row in files:
            if not file_row.details_sent:
                await self.fileinfo(report_id, file_row)
        return await self.finish(report_id)

    async def submit(self, row: CyberTipFilingRow) -> CyberTipFilingRow:
        document = evidence_box(self.ctx).open(row.report_enc, _report_context(row.id))
        await self.renew()
        try:
            answer = await self.client.submit(document)
        except CyberTiplineOutcomeUnknown as error:
            await self.commit(
                state=FilingState.OUTCOME_UNKNOWN,
                error=error,
                note="/submit may have reached NCMEC; any report it opened expires unfinished within 24 h",
            )
            raise self.shown(error, FilingState.OUTCOME_UNKNOWN) from None
        except CyberTiplineError as error:
            await self.commit(state=FilingState.FAILED, error=error)
            raise self.shown(error, FilingState.FAILED) from None
        return await self.commit(
            state=FilingState.SUBMITTED,
            ncmec_report_id=answer.report_id,
            submitted_at_ms=self.ctx.clock_ms(),
            ncmec_request_id=answer.request_id,
        )

    async def upload(self, report_id: int, file_row: CyberTipFileRow, data: bytes | None) -> None:
        if data is None or hashlib.sha256(data).hexdigest() != file_row.sha256:
            await self.retract(report_id, "a file's evidence changed or disappeared before upload")
            raise StorageError(f"the evidence of {_file_key(file_row)} changed before it was uploaded")
        await self.renew()
        try:
            answer = await self.client.upload(report_id, data, file_row.filename)
        except CyberTiplineError as error:
            final = await self.abandon(report_id, error)
            raise self.shown(error, final.state) from None
        if answer.md5 is not None and answer.md5.lower() != file_row.md5:
            await self.retract(report_id, "NCMEC's MD5 of an uploaded file does not match ours")
            raise StorageError("NCMEC received different bytes than were sent; the report was retracted")
        await self.commit(
            file_updates={
                file_row.id: {"ncmec_file_id": answer.file_id, "uploaded_at_ms": self.ctx.clock_ms()}
            }
        )

    async def fileinfo(self, report_id: int, file_row: CyberTipFileRow) -> None:
        assert file_row.ncmec_file_id is not None
        document = file_details_xml(build_file_details(file_row, report_id, file_row.ncmec_file_id))
        await self.renew()
        try:
            await self.client.fileinfo(document)
        except CyberTiplineRefused as error:
            final = await self.abandon(report_id, error)
            raise self.shown(error, final.state) from None
        except CyberTiplineError as error:  # unavailable: left for recovery
            row = await self.commit()
            raise self.shown(error, row.state) from None
        await self.commit(file_updates={file_row.id: {"details_sent": True}})

    async def finish(self, report_id: int) -> CyberTipFilingRow:
        await self.renew()
        try:
            done = await self.client.finish(report_id)
        except CyberTiplineRefused as error:
            if error.ncmec_code == _ALREADY_FINISHED:  # an earlier /finish landed; its answer was lost
                return await self.commit(state=FilingState.FINISHED, note="NCMEC: already finished (5102)")
            if error.ncmec_code == _ALREADY_RETRACTED:
                return await self.commit(state=FilingState.RETRACTED, note="NCMEC: already retracted (5101)")
            final = await self.abandon(report_id, error)
            raise self.shown(error, final.state) from None
        except CyberTiplineError as error:  # unavailable: left for recovery, which finishes or retracts
            row = await self.commit()
            raise self.shown(error, row.state) from None
        return await self.commit(state=FilingState.FINISHED, ncmec_request_id=done.request_id)

    async def abandon(self, report_id: int, error: CyberTiplineError) -> CyberTipFilingRow:
        """After a failure past /submit: retract the open report, then record NCMEC's refusal as failed
        (or, for an outage, the retraction). If the retraction cannot be made now, recovery makes it."""
        if error.ncmec_code == _NO_SUCH_REPORT:
            return await self.commit(state=FilingState.FAILED, error=error)
        try:
            row = await self.retract(report_id, f"abandoned after /{error.endpoint} failed")
        except CyberTiplineError:
            return await self.commit(error=error)
        if isinstance(error, CyberTiplineRefused) and row.state == FilingState.RETRACTED:
            return await self.commit(state=FilingState.FAILED, error=error, note="retracted at NCMEC")
        return row

    async def retract(self, report_id: int, why: str) -> CyberTipFilingRow:
        """Retracts the report; NCMEC's 5102/5101/5001 settle it as finished/retracted/failed. Raises
        CyberTiplineError when NCMEC cannot be reached or refuses otherwise (state unchanged)."""
        await self.renew()
        try:
            await self.client.retract(report_id)
        except CyberTiplineRefused as error:
            if error.ncmec_code == _ALREADY_FINISHED:
                return await self.commit(state=FilingState.FINISHED, note="NCMEC: already finished (5102)")
            if error.ncmec_code == _ALREADY_RETRACTED:
                return await self.commit(state=FilingState.RETRACTED, note=why)
            if error.ncmec_code == _NO_SUCH_REPORT:
                return await self.commit(
                    state=FilingState.FAILED, error=error, note="the report expired at NCMEC unfinished"
                )
            row = await self.commit(error=error)
            raise self.shown(error, row.state) from None
        except CyberTiplineError as error:
            row = await self.commit()
            raise self.shown(error, row.state) from None
        return await self.commit(state=FilingState.RETRACTED, note=why)


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
        row.report_enc = evidence_box(ctx).seal(prepared.report_xml, _report_context(row.id))
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
    if not await _take_lease(ctx, case_id, owner):
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
        filer = _Filer(ctx, filing_id, case_id, owner, actor, options)
        async with filer.client:
            await filer.drive(contents)
        return await get_filing(ctx, filing_id)
    finally:
        await _release_lease(ctx, case_id, owner)


async def _recover_one(
    ctx: ServerContext, filing_id: int, case_id: int, owner: str, options: FilingOptions
) -> FilingRecord:
    filer = _Filer(ctx, filing_id, case_id, owner, RECOVERY_ACTOR, options)
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
        if not await _take_lease(ctx, case_id, owner):
            continue
        try:
            touched.append(await _recover_one(ctx, filing_id, case_id, owner, options))
        finally:
            await _release_lease(ctx, case_id, owner)
    return touched

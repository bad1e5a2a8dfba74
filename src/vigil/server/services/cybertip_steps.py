"""The steps of one CyberTipline filing (issue 9), used by `vigil.server.services.cybertip_filing`: the
filing states, the per-case lease, and `Filer`, which drives one filing through /submit, /upload,
/fileinfo and /finish (or /retract), committing what NCMEC answered, with the calls it took (audited),
before each next step. Callers use `cybertip_filing`; nothing else should drive a filing.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vigil.errors import ConflictError, NotFoundError, StorageError
from vigil.safety.ncmec import file_details_xml
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
from vigil.server.db.cybertip import CyberTipFileRow, CyberTipFilingRepository, CyberTipFilingRow
from vigil.server.services.audit import append_audit
from vigil.server.services.cybertip_documents import build_file_details, referenced_blob_ids
from vigil.server.services.evidence import evidence_box
from vigil.server.services.preservation import place_hold

__all__ = [
    "FINISH_WINDOW_MS",
    "MEANING",
    "UNFINISHED",
    "Filer",
    "FilingOptions",
    "FilingState",
    "content_free_description",
    "release_lease",
    "report_context",
    "take_lease",
]

_HOUR_MS = 3600 * 1000
# NCMEC deletes an unfinished report 24 h after it was opened at the earliest; recovery finishes a report
# only with a margin left, and retracts it otherwise.
FINISH_WINDOW_MS = 23 * _HOUR_MS


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
# What NCMEC's validator quotes: values from the document ('…', "…") and echoed markup.
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|<[^>]*>[^<]*(</[^>]*>)?")
DESCRIPTION_CHARS = 200


def content_free_description(description: str) -> str:
    """NCMEC's description with everything it quotes removed: the schema validator echoes values of the
    document (`Value '<screen name>' is not facet-valid`), which must not reach the filing record, the
    console or a log. The rule's name and the `[line,column]` position stay for developers."""
    flat = " ".join(_QUOTED.sub("'…'", description).split())
    return flat if len(flat) <= DESCRIPTION_CHARS else flat[: DESCRIPTION_CHARS - 1] + "…"


@dataclass(frozen=True)
class FilingOptions:
    """How filing talks to NCMEC. Tests shorten the timeout and the backoff."""

    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(attempts=4, base_delay=0.5, max_delay=8.0))
    timeout: float = 30.0
    sleep: Sleep | None = None


# -- the lease -----------------------------------------------------------------------------------------------


async def take_lease(ctx: ServerContext, case_id: int, owner: str) -> bool:
    now = ctx.clock_ms()
    until = now + int(ctx.settings.cybertipline_lease_seconds * 1000)
    async with ctx.sessions() as session, session.begin():
        return await CyberTipFilingRepository(session).take_lease(case_id, owner, now, until)


async def renew_lease(ctx: ServerContext, case_id: int, owner: str) -> bool:
    """Whether `owner` still holds the case's lease (now extended); False once another filer took it."""
    until = ctx.clock_ms() + int(ctx.settings.cybertipline_lease_seconds * 1000)
    async with ctx.sessions() as session, session.begin():
        return await CyberTipFilingRepository(session).renew_lease(case_id, owner, until)


async def release_lease(ctx: ServerContext, case_id: int, owner: str) -> None:
    async with ctx.sessions() as session, session.begin():
        await CyberTipFilingRepository(session).release_lease(case_id, owner)


# -- the filer: one filing driven through NCMEC's steps ------------------------------------------------------


def report_context(filing_id: int) -> str:
    return f"cybertip_filing:{filing_id}:report"


def _file_key(row: CyberTipFileRow) -> str:
    return f"{'item' if row.source == 'report_item' else 'match'}:{row.source_id}"


class Filer:
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
        """Raises ConflictError when the lease was lost (it ran out and another filer took over, whether
        or not that filer has released it since)."""
        if not await renew_lease(self.ctx, self.case_id, self.owner):
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
                row.ncmec_description = content_free_description(error.description or error.detail)
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
                previous = row.state
                await session.flush()
                if not await repo.move_state(row.id, previous, state.value):
                    # Another filer (a slow original, or the worker that took over) settled it first:
                    # one state change, one audit entry, one hold.
                    await session.refresh(row, ["state"])
                    return row
                row.state = state.value
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
                        self.ctx,
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
        document = evidence_box(self.ctx).open(row.report_enc, report_context(row.id))
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

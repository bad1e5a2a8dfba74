"""Filing cases to the CyberTipline (`vigil.server.services.cybertip_filing`) against a real stand-in process,
on SQLite and PostgreSQL: a case to a finished report with its files, hashes and classification; the
`fileViewedByEsp` rule (only after an audited reveal of that file); NCMEC's refusals shown with their code
and no content; 5xx and timeouts retried; two concurrent filings of one case file once; recovery of a
filing whose filer died; preservation holds that the retention sweeps respect, released only by an admin
after their date."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cybertip_helpers import PASSWORD, USER, StandIn, add_reported_image, running_stand_in, seed_csam_case
from live_server import create_postgres_database, drop_postgres_database, require_backend
from pydantic import SecretStr

from vigil.errors import ConflictError, PermissionDenied, ValidationError
from vigil.protocol.ids import DeviceId, UserId
from vigil.protocol.reports import ReportReason
from vigil.protocol.wire import AgeBand
from vigil.safety.ncmec import CyberTiplineDocumentError, IndustryClassification
from vigil.server.context import ServerContext
from vigil.server.cybertipline import CyberTiplineError, CyberTiplineRefused, RetryPolicy
from vigil.server.db.accounts import UserRepository, UserRow
from vigil.server.db.audit import AuditRepository
from vigil.server.db.blobs import BlobRepository, BlobRow
from vigil.server.db.cases import CaseRepository
from vigil.server.db.cybertip import CyberTipFilingRepository
from vigil.server.db.metadata import MetadataEventRow, MetadataRepository
from vigil.server.services import cybertip_filing as filing
from vigil.server.services import metadata
from vigil.server.services.accounts import AuthenticatedDevice
from vigil.server.services.audit import verify_chain
from vigil.server.services.blobs import download_blob, sweep_expired_blobs
from vigil.server.services.cases import open_or_join_case
from vigil.server.services.cybertip_filing import (
    AlreadyReported,
    FileClassification,
    FilingOptions,
    FilingState,
)
from vigil.server.services.evidence import reveal_image
from vigil.server.services.metadata import sweep_expired_events
from vigil.server.services.preservation import preserved_copies
from vigil.server.services.reports import sweep_expired_reports
from vigil.server.services.vouchers import reveal_match_image
from vigil.server.settings import Settings

LEAD = "reviewer:lead-lucia"
FAST = FilingOptions(retry=RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05), timeout=15.0)
CSAM = "child-pornography"
YEAR_MS = 366 * 24 * 3600 * 1000
LEASE_S = 60.0


def _advance(ctx: ServerContext, ms: int) -> None:
    """Moves the context's clock on by `ms` (leases, NCMEC's 24 h window) without waiting."""
    earlier = ctx.clock_ms
    ctx.clock_ms = lambda: earlier() + ms


async def _wait_until(ready: object, what: str, timeout_s: float = 60.0) -> None:
    """Polls `ready` (an async predicate) until it holds; fails the test naming `what` if it never does."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not (callable(ready) and await ready()):
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
def stand_in() -> Iterator[StandIn]:
    with running_stand_in() as running:
        yield running


@pytest.fixture(params=["sqlite", "postgres"])
async def ctx(
    request: pytest.FixtureRequest, tmp_path: Path, stand_in: StandIn
) -> AsyncIterator[ServerContext]:
    require_backend(request.param)
    database = None
    url = f"sqlite+aiosqlite:///{tmp_path / 'vigil.db'}"
    if request.param == "postgres":
        database, url = create_postgres_database()
    settings = Settings(
        data_dir=tmp_path,
        database_url=url,
        cybertipline_url=stand_in.url,
        cybertipline_username=USER,
        cybertipline_password=PASSWORD,  # type: ignore[arg-type]
        # Long enough that no lease runs out under machine load; tests that need one to run out move
        # the context's clock past it (`_advance`) instead of sleeping.
        cybertipline_lease_seconds=LEASE_S,
    )
    stand_in.fault()  # no faults left over from another test
    try:
        async with ServerContext.open(settings) as context:
            yield context
    finally:
        if database is not None:
            drop_postgres_database(database)


async def _keys(ctx: ServerContext, case_id: int) -> list[str]:
    preview = await filing.prepare_filing(ctx, case_id, incident_type=CSAM, classifications={}, actor=LEAD)
    return [f.key for f in preview.files]


async def test_a_case_is_filed_to_a_finished_report_with_its_files_and_a_hold(
    ctx: ServerContext, stand_in: StandIn
) -> None:
    seeded = await seed_csam_case(ctx, "finish")
    await reveal_image(ctx, LEAD, seeded.item_id)  # the lead looked at the reported image, not the match
    keys = await _keys(ctx, seeded.case_id)
    assert keys == [f"item:{seeded.item_id}", f"match:{seeded.match_id}"]
    classes = {
        keys[0]: FileClassification(IndustryClassification.B2, frozenset({"possible_self_production"})),
        keys[1]: FileClassification(IndustryClassification.A2),
    }
    preview = await filing.prepare_filing(
        ctx, seeded.case_id, incident_type=CSAM, classifications=classes, actor=LEAD
    )
    assert "<incidentType>Child Pornography (possession, manufacture, and distribution)</incidentType>" in (
        preview.report_xml
    )
    assert f"<screenName>{seeded.subject}</screenName>" in preview.report_xml
    assert "<fileViewedByEsp>true</fileViewedByEsp>" in preview.files[0].file_details_xml
    assert "<fileViewedByEsp>false</fileViewedByEsp>" in preview.files[1].file_details_xml
    assert "PDQ distance 0" in (preview.files[1].match or "")

    record = await filing.file_report(
        ctx, seeded.case_id, incident_type=CSAM, classifications=classes, actor=LEAD, options=FAST
    )
    assert record.state == FilingState.FINISHED and record.ncmec_report_id is not None
    assert record.filed_by == LEAD and record.is_test and record.attempts >= 6
    at_ncmec = stand_in.report(record.ncmec_report_id)
    assert at_ncmec["state"] == "finished"
    sent = {f["sha256"]: f for f in at_ncmec["files"]}
    item_file = sent[hashlib.sha256(seeded.item_image).hexdigest()]
    match_file = sent[hashlib.sha256(seeded.match_image).hexdigest()]
    assert (item_file["viewed_by_esp"], item_file["classification"]) == ("true", "B2")
    assert (match_file["viewed_by_esp"], match_file["classification"]) == ("false", "A2")
    assert set(match_file["hashes"]) == {"PDQ", "SHA256", "MD5"}
    assert match_file["hashes"]["MD5"] == hashlib.md5(seeded.match_image).hexdigest()
    assert [f.ncmec_file_id for f in record.files] == [f["file_id"] for f in at_ncmec["files"]]

    # Idempotent per case: filing again returns the finished report and sends nothing.
    calls_before = len(stand_in.view()["calls"])
    again = await filing.file_report(
        ctx, seeded.case_id, incident_type=CSAM, classifications=classes, actor=LEAD
    )
    assert again.id == record.id and len(stand_in.view()["calls"]) == calls_before

    # Every call is in the audit log with its Request-ID, as is every state change; no content.
    async with ctx.sessions() as session:
        audit = AuditRepository(session)
        calls = await audit.for_target(f"cybertip:{record.id}", 100)
        states = [r for r in await audit.for_target(f"case:{seeded.case_id}", 100)]
    request_ids = {
        c["request_id"] for c in stand_in.view()["calls"] if c["report_id"] == record.ncmec_report_id
    }
    assert {json.loads(r.details)["request_id"] for r in calls} >= request_ids
    changes = [r for r in states if r.action == "cybertip.state_changed"]
    assert [json.loads(r.details)["to"] for r in reversed(changes)] == [
        "draft",
        "submitted",
        "uploading",
        "finished",
    ]
    assert any(r.action == "preservation.hold_placed" for r in states)
    for row in [*calls, *states]:
        assert seeded.subject not in row.details

    holds = await filing.list_holds(ctx)
    assert [(h.case_id, h.filing_id, h.in_force, h.subject) for h in holds] == [
        (seeded.case_id, record.id, True, seeded.subject)
    ]


async def test_file_viewed_by_esp_is_true_only_after_an_audited_reveal_of_that_file(
    ctx: ServerContext,
) -> None:
    seeded = await seed_csam_case(ctx, "viewed")
    before = await filing.prepare_filing(
        ctx, seeded.case_id, incident_type=CSAM, classifications={}, actor=LEAD
    )
    assert [f.viewed_by_esp for f in before.files] == [False, False]
    await reveal_match_image(ctx, LEAD, seeded.match_id)
    after = await filing.prepare_filing(
        ctx, seeded.case_id, incident_type=CSAM, classifications={}, actor=LEAD
    )
    assert [f.viewed_by_esp for f in after.files] == [False, True]
    assert after.files[1].revealed_by == (LEAD,)
    assert "<fileViewedByEsp>true</fileViewedByEsp>" in after.files[1].file_details_xml


async def test_bad_choices_are_refused_naming_the_field(ctx: ServerContext) -> None:
    seeded = await seed_csam_case(ctx, "bad", with_match=False)
    with pytest.raises(CyberTiplineDocumentError) as wrong_type:
        await filing.prepare_filing(
            ctx, seeded.case_id, incident_type="sextortion", classifications={}, actor=LEAD
        )
    assert wrong_type.value.field == "incident_type"
    with pytest.raises(CyberTiplineDocumentError) as wrong_key:
        await filing.prepare_filing(
            ctx,
            seeded.case_id,
            incident_type=CSAM,
            classifications={"item:999999": FileClassification()},
            actor=LEAD,
        )
    assert wrong_key.value.field == "classifications[item:999999]"
    key = f"item:{seeded.item_id}"
    with pytest.raises(CyberTiplineDocumentError) as wrong_flag:
        await filing.prepare_filing(
            ctx,
            seeded.case_id,
            incident_type=CSAM,
            classifications={key: FileClassification(annotations=frozenset({"cute"}))},
            actor=LEAD,
        )
    assert wrong_flag.value.field == f"classifications[{key}].annotations"
    async with ctx.sessions() as session, session.begin():
        user = await UserRepository(session).add(
            UserRow(username="nobody-bad", age_band="adult", band_changes_on=None, created_at_ms=1)
        )
        bare = await open_or_join_case(session, user, ReportReason.SPAM, 10, False, 1)
    with pytest.raises(ValidationError, match="no verified CSAM evidence"):
        await filing.prepare_filing(ctx, bare.id, incident_type=CSAM, classifications={}, actor=LEAD)


async def test_an_ncmec_refusal_is_shown_with_its_code_and_the_open_report_is_retracted(
    ctx: ServerContext, stand_in: StandIn
) -> None:
    seeded = await seed_csam_case(ctx, "refused", with_match=False)
    stand_in.fault({"endpoint": "fileinfo", "action": "fail", "times": 1, "http_status": 400, "code": 4100})
    with pytest.raises(CyberTiplineRefused) as refused:
        await filing.file_report(
            ctx, seeded.case_id, incident_type=CSAM, classifications={}, actor=LEAD, options=FAST
        )
    shown = str(refused.value)
    assert "/fileinfo" in shown and "NCMEC code 4100 (validation failed)" in shown and "Request-ID" in shown
    assert seeded.subject not in shown and "injected" not in shown
    (record,) = [r for r in await filing.list_filings(ctx) if r.case_id == seeded.case_id]
    assert (record.state, record.ncmec_code) == (FilingState.FAILED, 4100)
    assert record.ncmec_report_id is not None
    assert stand_in.report(record.ncmec_report_id)["state"] == "retracted"
    assert await filing.list_holds(ctx) == []


async def test_wrong_credentials_fail_at_submit_with_code_2000(ctx: ServerContext) -> None:
    seeded = await seed_csam_case(ctx, "auth", with_match=False)
    ctx.settings.cybertipline_password = SecretStr("wrong-password")
    with pytest.raises(CyberTiplineRefused, match="NCMEC code 2000"):
        await filing.file_report(
            ctx, seeded.case_id, incident_type=CSAM, classifications={}, actor=LEAD, options=FAST
        )
    (record,) = await filing.list_filings(ctx)
    assert (record.state, record.ncmec_code, record.ncmec_report_id) == (FilingState.FAILED, 2000, None)


async def test_5xx_answers_and_timeouts_are_retried(ctx: ServerContext, stand_in: StandIn) -> None:
    seeded = await seed_csam_case(ctx, "retry", with_match=False)
    stand_in.fault(
        {"endpoint": "finish", "action": "fail", "times": 2, "http_status": 503, "code": 1000},
        {"endpoint": "fileinfo", "action": "stall", "times": 1, "seconds": 8.0},
    )
    # A timeout well above what any call takes on a loaded machine; the stall outlasts it.
    options = FilingOptions(retry=FAST.retry, timeout=3.0)
    record = await filing.file_report(
        ctx, seeded.case_id, incident_type=CSAM, classifications={}, actor=LEAD, options=options
    )
    assert record.state == FilingState.FINISHED
    assert record.retries == 3  # one /fileinfo after its timeout, two /finish after 503s
    assert stand_in.report(record.ncmec_report_id or 0)["state"] == "finished"


async def test_two_concurrent_filings_of_one_case_file_once(ctx: ServerContext, stand_in: StandIn) -> None:
    seeded = await seed_csam_case(ctx, "twice", with_match=False)
    before = len(stand_in.view()["reports"])
    stand_in.fault({"endpoint": "submit", "action": "stall", "times": 2, "seconds": 0.5})
    results = await asyncio.gather(
        *[
            filing.file_report(
                ctx, seeded.case_id, incident_type=CSAM, classifications={}, actor=LEAD, options=FAST
            )
            for _ in range(2)
        ],
        return_exceptions=True,
    )
    finished = [r for r in results if isinstance(r, filing.FilingRecord)]
    refused = [r for r in results if isinstance(r, ConflictError)]
    assert len(finished) == 1 and len(refused) == 1, results
    assert len(stand_in.view()["reports"]) == before + 1
    assert len(await filing.list_filings(ctx)) == 1


async def test_recovery_finishes_a_filing_whose_filer_died_after_uploading(
    ctx: ServerContext, stand_in: StandIn
) -> None:
    seeded = await seed_csam_case(ctx, "crash")
    # The filer "dies" inside /finish: the stand-in finishes the report at once but holds the answer back
    # (far longer than the test waits), and the filer is cancelled meanwhile: a lost answer.
    stand_in.fault({"endpoint": "finish", "action": "stall", "times": 1, "seconds": 15.0})
    task = asyncio.create_task(
        filing.file_report(
            ctx,
            seeded.case_id,
            incident_type=CSAM,
            classifications={},
            actor=LEAD,
            options=FilingOptions(retry=RetryPolicy(attempts=1), timeout=120),
        )
    )

    async def finished_at_ncmec() -> bool:
        rows = await filing.list_filings(ctx)
        return (
            bool(rows)
            and rows[0].ncmec_report_id is not None
            and (stand_in.report(rows[0].ncmec_report_id)["state"] == "finished")
        )

    await _cancel_when(task, finished_at_ncmec)
    (stuck,) = await filing.list_filings(ctx)
    assert stuck.state == FilingState.UPLOADING
    # A crash leaves the lease in place (the cancelled filer's cleanup is not to be trusted): hold it open.
    async with ctx.sessions() as session, session.begin():
        assert await CyberTipFilingRepository(session).take_lease(
            seeded.case_id, "dead-filer", ctx.clock_ms(), ctx.clock_ms() + 800
        )
    assert await filing.recover_unfinished_filings(ctx, FAST) == []  # the lease is still in force
    _advance(ctx, 1000)  # the dead filer's lease runs out
    (recovered,) = await filing.recover_unfinished_filings(ctx, FAST)
    assert (recovered.state, recovered.recoveries) == (FilingState.FINISHED, 1)
    reports = [r for r in stand_in.view()["reports"] if r["report_id"] == recovered.ncmec_report_id]
    assert [r["state"] for r in reports] == ["finished"]
    assert await filing.recover_unfinished_filings(ctx, FAST) == []  # exactly once
    assert len([h for h in await filing.list_holds(ctx) if h.filing_id == recovered.id]) == 1


async def test_recovery_retracts_a_filing_with_files_not_uploaded(
    ctx: ServerContext, stand_in: StandIn
) -> None:
    seeded = await seed_csam_case(ctx, "halfway")
    stand_in.fault({"endpoint": "upload", "action": "stall", "times": 5, "seconds": 15.0})
    task = asyncio.create_task(
        filing.file_report(
            ctx,
            seeded.case_id,
            incident_type=CSAM,
            classifications={},
            actor=LEAD,
            options=FilingOptions(retry=RetryPolicy(attempts=1), timeout=30),
        )
    )

    async def uploading() -> bool:
        rows = await filing.list_filings(ctx)
        return bool(rows) and rows[0].state == "uploading"

    await _cancel_when(task, uploading)
    stand_in.fault()
    (stuck,) = await filing.list_filings(ctx)
    assert stuck.state == FilingState.UPLOADING and stuck.ncmec_report_id is not None
    (recovered,) = await filing.recover_unfinished_filings(ctx, FAST)
    assert recovered.state == FilingState.RETRACTED
    assert stand_in.report(stuck.ncmec_report_id)["state"] == "retracted"


async def test_a_hold_copies_its_case_and_pins_its_blobs_until_an_admin_releases_it_after_its_date(
    ctx: ServerContext,
) -> None:
    """The finished report's hold seals the case's reports and the account's metadata into the case; the
    originals then expire like the unheld case's; only the reported blob is pinned in place. Release (by
    an admin, after the date) erases the copy and unpins the blob; the audit chain still verifies."""
    seeded = await seed_csam_case(ctx, "hold", with_match=False)
    other = await seed_csam_case(ctx, "nohold", with_match=False)
    now = ctx.clock_ms()
    async with ctx.sessions() as session, session.begin():
        blobs = BlobRepository(session)
        for blob_id in (seeded.blob_id, other.blob_id):
            await blobs.add(
                BlobRow(
                    id=blob_id,
                    uploader_device_id="d",
                    uploader_user_id=seeded.subject_id,
                    size=1,
                    created_at_ms=1,
                    expires_at_ms=2,
                    attached=True,
                )
            )
        events = MetadataRepository(session)
        for subject_id in (seeded.subject_id, other.subject_id):
            actor = metadata.pseudonym_of(ctx, subject_id)  # the log names accounts by pseudonym
            events.add(MetadataEventRow(at_ms=1, kind="message", actor=actor, target="x"))
    record = await filing.file_report(
        ctx, seeded.case_id, incident_type=CSAM, classifications={}, actor=LEAD, options=FAST
    )
    assert record.state == FilingState.FINISHED

    async def remaining() -> tuple[set[int], set[str], set[str]]:
        async with ctx.sessions() as session:
            cases = CaseRepository(session)
            reports = {
                r.case_id for c in (seeded.case_id, other.case_id) for r, _ in await cases.reports_of(c)
            }
            blob_ids = {b for b in (seeded.blob_id, other.blob_id) if await BlobRepository(session).get(b)}
            actors = {e.actor for e in await MetadataRepository(session).between(0, now + 1)}
        return reports, blob_ids, actors

    held_actor = metadata.pseudonym_of(ctx, seeded.subject_id)
    assert await remaining() == (
        {seeded.case_id, other.case_id},
        {seeded.blob_id, other.blob_id},
        {held_actor, metadata.pseudonym_of(ctx, other.subject_id)},
    )
    assert await sweep_expired_reports(ctx) == 2
    assert await sweep_expired_blobs(ctx) == 1
    assert await sweep_expired_events(ctx, now_ms=now) == 2
    assert await remaining() == (set(), {seeded.blob_id}, set())
    (copy,) = await preserved_copies(ctx, seeded.case_id)
    assert copy["pinned_blob_ids"] == [seeded.blob_id]
    assert [r["case_id"] for r in copy["tables"]["reports"]] == [seeded.case_id]
    assert copy["tables"]["report_items"] and copy["tables"]["report_items"][0]["content_enc"]["b64"]
    assert [e["actor"] for e in copy["tables"]["metadata_events"]] == [held_actor]
    assert await preserved_copies(ctx, other.case_id) == []

    (hold,) = await filing.list_holds(ctx)
    with pytest.raises(PermissionDenied):
        await filing.release_hold(ctx, hold.id, actor=LEAD, is_admin=False, now=now + YEAR_MS)
    with pytest.raises(ConflictError, match="in force until"):
        await filing.release_hold(ctx, hold.id, actor="reviewer:admin-ada", is_admin=True, now=now)
    released = await filing.release_hold(
        ctx, hold.id, actor="reviewer:admin-ada", is_admin=True, now=now + YEAR_MS
    )
    assert released.released_by == "reviewer:admin-ada" and not released.in_force
    with pytest.raises(ConflictError, match="already released"):
        await filing.release_hold(ctx, hold.id, actor="reviewer:admin-ada", is_admin=True, now=now + YEAR_MS)
    assert (await sweep_expired_reports(ctx), await sweep_expired_blobs(ctx)) == (0, 1)
    assert await remaining() == (set(), set(), set())
    assert await preserved_copies(ctx, seeded.case_id) == []
    async with ctx.sessions() as session:
        actions = [r.action for r in await AuditRepository(session).for_target(f"case:{seeded.case_id}", 100)]
        assert (await verify_chain(session)).ok
    assert "preservation.release_refused" in actions and "preservation.hold_released" in actions


async def _cancel_when(task: asyncio.Task[object], ready: object) -> None:
    """Kills the filer once `ready` holds (a crash at that point), failing the test if it never does."""
    await _wait_until(ready, "the filing to reach the point of the crash")
    assert not task.done(), task
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_filing_interrupted_during_submit_is_outcome_unknown_and_the_next_filing_finishes(
    ctx: ServerContext, stand_in: StandIn
) -> None:
    seeded = await seed_csam_case(ctx, "submitcrash", with_match=False)
    before = {r["report_id"] for r in stand_in.view()["reports"]}
    stand_in.fault({"endpoint": "submit", "action": "stall", "times": 1, "seconds": 15.0})
    task = asyncio.create_task(
        filing.file_report(
            ctx, seeded.case_id, incident_type=CSAM, classifications={}, actor=LEAD, options=FAST
        )
    )

    async def opened_at_ncmec() -> bool:
        return any(r["report_id"] not in before for r in stand_in.view()["reports"])

    # Killed after NCMEC opened the report but before its answer (with the id) came back.
    await _cancel_when(task, opened_at_ncmec)
    (interrupted,) = await filing.list_filings(ctx)
    assert (interrupted.state, interrupted.ncmec_report_id) == (FilingState.DRAFT, None)
    record = await filing.file_report(
        ctx, seeded.case_id, incident_type=CSAM, classifications={}, actor=LEAD, options=FAST
    )
    assert record.state == FilingState.FINISHED and record.id != interrupted.id
    settled = await filing.get_filing(ctx, interrupted.id)
    assert (settled.state, settled.recoveries) == (FilingState.OUTCOME_UNKNOWN, 1)
    new = [r for r in stand_in.view()["reports"] if r["report_id"] not in before]
    # One finished report; the orphan stays unfinished, so NCMEC deletes it (24 h): never a duplicate.
    assert sorted(r["state"] for r in new) == ["finished", "open"]
    assert [r["report_id"] for r in new if r["state"] == "finished"] == [record.ncmec_report_id]


async def test_recovery_retracts_a_filing_too_close_to_ncmecs_24_hour_expiry(
    ctx: ServerContext, stand_in: StandIn
) -> None:
    seeded = await seed_csam_case(ctx, "late", with_match=False)
    stand_in.fault({"endpoint": "fileinfo", "action": "stall", "times": 1, "seconds": 15.0})
    task = asyncio.create_task(
        filing.file_report(
            ctx, seeded.case_id, incident_type=CSAM, classifications={}, actor=LEAD, options=FAST
        )
    )

    async def uploaded() -> bool:
        found = await filing.list_filings(ctx)
        return bool(found) and all(f.ncmec_file_id for f in found[0].files)

    await _cancel_when(task, uploaded)
    (stuck,) = await filing.list_filings(ctx)
    assert stuck.state == FilingState.UPLOADING and stuck.ncmec_report_id is not None
    real_clock = ctx.clock_ms
    ctx.clock_ms = lambda: real_clock() + filing.FINISH_WINDOW_MS + 60_000
    (recovered,) = await filing.recover_unfinished_filings(ctx, FAST)
    assert recovered.state == FilingState.RETRACTED
    assert stand_in.report(stuck.ncmec_report_id)["state"] == "retracted"


async def test_without_credentials_nothing_is_stored_or_sent(ctx: ServerContext) -> None:
    seeded = await seed_csam_case(ctx, "nocreds", with_match=False)
    ctx.settings.cybertipline_username = None
    with pytest.raises(CyberTiplineError, match="VIGIL_CYBERTIPLINE_USERNAME"):
        await filing.file_report(ctx, seeded.case_id, incident_type=CSAM, classifications={}, actor=LEAD)
    assert await filing.list_filings(ctx) == []
    assert await filing.recover_unfinished_filings(ctx) == []


async def test_evidence_that_arrives_after_a_finished_report_goes_in_a_new_report_of_its_own(
    ctx: ServerContext, stand_in: StandIn
) -> None:
    seeded = await seed_csam_case(ctx, "later", with_match=False)
    first = await filing.file_report(
        ctx, seeded.case_id, incident_type=CSAM, classifications={}, actor=LEAD, options=FAST
    )
    with pytest.raises(AlreadyReported, match=f"CyberTipline report {first.ncmec_report_id}"):
        await filing.prepare_filing(ctx, seeded.case_id, incident_type=CSAM, classifications={}, actor=LEAD)
    item_id, image = await add_reported_image(ctx, seeded, 4242)
    preview = await filing.prepare_filing(
        ctx, seeded.case_id, incident_type=CSAM, classifications={}, actor=LEAD
    )
    assert [f.key for f in preview.files] == [f"item:{item_id}"]
    second = await filing.file_report(
        ctx, seeded.case_id, incident_type=CSAM, classifications={}, actor=LEAD, options=FAST
    )
    assert second.id != first.id and second.state == FilingState.FINISHED
    assert [f.source_id for f in second.files] == [item_id]
    (sent,) = stand_in.report(second.ncmec_report_id or 0)["files"]
    assert sent["sha256"] == hashlib.sha256(image).hexdigest()
    third = await filing.file_report(ctx, seeded.case_id, incident_type=CSAM, classifications={}, actor=LEAD)
    assert third.id == second.id
    assert len(await filing.list_holds(ctx)) == 2
    other = await seed_csam_case(ctx, "other", with_match=False)
    assert [f.id for f in await filing.list_filings(ctx, case_id=seeded.case_id)] == [second.id, first.id]
    assert await filing.list_filings(ctx, case_id=other.case_id) == []


async def test_a_filer_that_lost_its_lease_during_a_slow_submit_never_files_a_second_report(
    ctx: ServerContext, stand_in: StandIn
) -> None:
    """Filer A's /submit is slow; its lease runs out and filer B takes the case over, settles A's draft
    and files the case. When A's answer finally arrives, B has released the lease: A must not take the
    case again and finish a second report; it records its report id so that recovery retracts it."""
    seeded = await seed_csam_case(ctx, "slowsubmit", with_match=False)
    before = {r["report_id"] for r in stand_in.view()["reports"]}
    stand_in.fault({"endpoint": "submit", "action": "stall", "times": 1, "seconds": 4.0})
    slow = asyncio.create_task(
        filing.file_report(
            ctx,
            seeded.case_id,
            incident_type=CSAM,
            classifications={},
            actor=LEAD,
            options=FilingOptions(retry=RetryPolicy(attempts=1), timeout=60),
        )
    )

    async def opened_at_ncmec() -> bool:
        return any(r["report_id"] not in before for r in stand_in.view()["reports"])

    await _wait_until(opened_at_ncmec, "A's /submit to reach the stand-in")
    _advance(ctx, int(LEASE_S * 1000) + 1000)  # A's lease ran out while it waits for NCMEC's answer
    other = await filing.file_report(
        ctx, seeded.case_id, incident_type=CSAM, classifications={}, actor=LEAD, options=FAST
    )
    assert other.state == FilingState.FINISHED
    with pytest.raises(ConflictError, match="lost the CyberTipline filing lease"):
        await slow
    await filing.recover_unfinished_filings(ctx, FAST)
    new = [r for r in stand_in.view()["reports"] if r["report_id"] not in before]
    assert [r["report_id"] for r in new if r["state"] == "finished"] == [other.ncmec_report_id]
    assert sorted(r["state"] for r in new) == ["finished", "retracted"]
    assert len([h for h in await filing.list_holds(ctx) if h.case_id == seeded.case_id]) == 1


async def test_a_held_blob_survives_its_last_recipients_fetch(ctx: ServerContext) -> None:
    """A blob is normally deleted once every recipient device fetched it; one a hold names is kept."""
    seeded = await seed_csam_case(ctx, "heldfetch", with_match=False)
    other = await seed_csam_case(ctx, "freefetch", with_match=False)
    async with ctx.sessions() as session, session.begin():
        blobs = BlobRepository(session)
        for blob_id in (seeded.blob_id, other.blob_id):
            await blobs.add(
                BlobRow(
                    id=blob_id,
                    uploader_device_id="sender-device",
                    uploader_user_id=seeded.subject_id,
                    size=9,
                    created_at_ms=1,
                    expires_at_ms=ctx.clock_ms() + YEAR_MS,
                    attached=True,
                )
            )
            await blobs.add_fetchers(blob_id, ["recipient-device"])
    for blob_id in (seeded.blob_id, other.blob_id):

        async def chunks() -> AsyncIterator[bytes]:
            yield b"sealed..."

        await ctx.blobs.receive(blob_id, chunks(), max_bytes=100)
    record = await filing.file_report(
        ctx, seeded.case_id, incident_type=CSAM, classifications={}, actor=LEAD, options=FAST
    )
    assert record.state == FilingState.FINISHED
    recipient = AuthenticatedDevice(
        user_id=seeded.subject_id + 1000,
        username=UserId(seeded.reporter),
        device_id=DeviceId("recipient-device"),
        age_band=AgeBand.ADULT,
    )
    for blob_id in (seeded.blob_id, other.blob_id):
        download = await download_blob(ctx, recipient, blob_id)
        assert b"".join([chunk async for chunk in download.chunks]) == b"sealed..."
    async with ctx.sessions() as session:
        kept = {b for b in (seeded.blob_id, other.blob_id) if await BlobRepository(session).get(b)}
    assert kept == {seeded.blob_id}
    assert b"".join([chunk async for chunk in await ctx.blobs.open(seeded.blob_id)]) == b"sealed..."


async def test_two_filers_settling_one_filing_at_once_place_one_hold(
    ctx: ServerContext, stand_in: StandIn
) -> None:
    """A slow filer and the worker that took over can both learn that the report is finished (one from
    /finish, the other from 5102) and commit it at the same moment: the filing row is locked for each
    commit, so one state change, one hold."""
    from vigil.server.services.cybertip_steps import Filer

    seeded = await seed_csam_case(ctx, "settle", with_match=False)
    stand_in.fault({"endpoint": "finish", "action": "stall", "times": 1, "seconds": 15.0})
    task = asyncio.create_task(
        filing.file_report(
            ctx, seeded.case_id, incident_type=CSAM, classifications={}, actor=LEAD, options=FAST
        )
    )

    async def finished_at_ncmec() -> bool:
        rows = await filing.list_filings(ctx)
        return (
            bool(rows)
            and rows[0].ncmec_report_id is not None
            and (stand_in.report(rows[0].ncmec_report_id)["state"] == "finished")
        )

    await _cancel_when(task, finished_at_ncmec)
    (stuck,) = await filing.list_filings(ctx)
    assert stuck.state == FilingState.UPLOADING
    filers = [Filer(ctx, stuck.id, seeded.case_id, owner, LEAD, FAST) for owner in ("slow", "recovery")]
    try:
        await asyncio.gather(*[f.commit(state=FilingState.FINISHED) for f in filers])
    finally:
        for f in filers:
            await f.client.aclose()
    assert len([h for h in await filing.list_holds(ctx) if h.case_id == seeded.case_id]) == 1
    async with ctx.sessions() as session:
        trail = await AuditRepository(session).for_target(f"case:{seeded.case_id}", 100)
    finished = [r for r in trail if r.action == "cybertip.state_changed" and '"finished"' in r.details]
    assert len(finished) == 1


async def test_an_ncmec_outage_at_finish_leaves_the_report_for_recovery_to_finish_not_retracted(
    ctx: ServerContext, stand_in: StandIn
) -> None:
    """NCMEC answering 503 "server error" (1000) on every retry of /finish is an outage, not a refusal:
    the fully uploaded report stays open and recovery finishes it once NCMEC is back."""
    from vigil.server.cybertipline import CyberTiplineUnavailable

    seeded = await seed_csam_case(ctx, "outage", with_match=False)
    stand_in.fault({"endpoint": "finish", "action": "fail", "times": 4, "http_status": 503, "code": 1000})
    with pytest.raises(CyberTiplineUnavailable, match="NCMEC code 1000"):
        await filing.file_report(
            ctx, seeded.case_id, incident_type=CSAM, classifications={}, actor=LEAD, options=FAST
        )
    (waiting,) = await filing.list_filings(ctx)
    assert waiting.state == FilingState.UPLOADING and waiting.ncmec_report_id is not None
    assert stand_in.report(waiting.ncmec_report_id)["state"] == "open"
    (recovered,) = await filing.recover_unfinished_filings(ctx, FAST)
    assert (recovered.id, recovered.state) == (waiting.id, FilingState.FINISHED)
    assert stand_in.report(waiting.ncmec_report_id)["state"] == "finished"

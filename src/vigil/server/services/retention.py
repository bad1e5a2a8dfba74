"""Retention that enforces itself (issue 16): each rule of the data inventory
(`vigil.server.db.inventory`) is one sweep, and each sweep is its own background task started in the
app lifespan, independent of every other setting (risk scoring can be off; retention cannot). A sweep
takes `now_ms`, so tests run it on a simulated clock; `run_sweep` records what it did in
`ctx.retention` (served by `GET /v1/retention`).

What each sweep deletes:
  metadata_events           events older than VIGIL_METADATA_RETENTION_DAYS (scoring window + margin)
  delivered_messages        delivery records with no queue entry left, VIGIL_DELIVERY_RETRY_HOURS after
                            sending (a resend of the same id within that window is still recognised)
  abandoned_queue_entries   ciphertexts no device fetched within VIGIL_QUEUE_RETENTION_DAYS
  contact_requests          pending requests become "ignored" after 14 days; answered ones go
                            VIGIL_CONTACT_REQUEST_RETENTION_DAYS after the answer
  console_sessions          reviewer sessions past their expiry
  notices                   plain and safety notices older than VIGIL_NOTICE_RETENTION_DAYS
  vouchers                  vouchers older than VIGIL_VOUCHER_RETENTION_DAYS (an opened one lives on as
                            the encrypted copy in its image-match case)
  image_matches             image-match cases no longer open, VIGIL_REPORT_RETENTION_DAYS after opening
  membership_periods        group membership periods that ended VIGIL_MEMBERSHIP_HISTORY_DAYS ago (a
                            reported group message older than that no longer verifies its membership)
  reports                   reports past VIGIL_REPORT_RETENTION_DAYS (`reports.sweep_expired_reports`)
  blobs                     attachments past VIGIL_BLOB_TTL_SECONDS (`blobs.sweep_expired_blobs`)
  risk_history              risk assessments older than VIGIL_RISK_HISTORY_RETENTION_DAYS
  blob_leftovers            what crashed or abandoned transfers left in the blob backend a day ago and
                            nothing refers to: unfinished uploads (S3 multipart uploads, database chunks,
                            partial files) and stored blobs without a blob row (`blobs.sweep_blob_leftovers`)
  deleted_accounts          a deleted account kept for a hold, open case or unopened voucher: once none
                            is left, its metadata and username go (`deletion.finish_pending_deletions`;
                            its count is accounts finished)
and the age-band job (`accounts.move_age_bands`): minors' bands move on on their birthdays (its count is
accounts moved, not rows deleted).

A preservation hold keeps nothing in place except the attachment blobs it pins: placing it copies what it
keeps into the case (`vigil.server.services.preservation`), so every other sweep deletes held accounts'
records at the same time as anyone else's. The blob sweep skips `held_data().blob_ids`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from vigil.server.context import ServerContext
from vigil.server.db.retention import RetentionRepository
from vigil.server.services import accounts, blobs, contacts, deletion, metadata, reports, risk_history

__all__ = ["SWEEPS", "Sweep", "run_sweep", "start_sweeps", "sweep_forever"]

log = logging.getLogger(__name__)
HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS

SweepFunction = Callable[[ServerContext, int], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class Sweep:
    name: str
    run: SweepFunction  # deletes what is past its time at `now_ms`; returns how many rows


async def sweep_metadata_events(ctx: ServerContext, now_ms: int) -> int:
    return await metadata.sweep_expired_events(ctx, now_ms)


async def sweep_delivered_messages(ctx: ServerContext, now_ms: int) -> int:
    cutoff = now_ms - ctx.settings.delivery_retry_hours * HOUR_MS
    async with ctx.sessions() as session, session.begin():
        return await RetentionRepository(session).delete_delivered_messages(cutoff)


async def sweep_abandoned_queue_entries(ctx: ServerContext, now_ms: int) -> int:
    cutoff = now_ms - ctx.settings.queue_retention_days * DAY_MS
    async with ctx.sessions() as session, session.begin():
        return await RetentionRepository(session).delete_abandoned_queue_entries(cutoff)


async def sweep_contact_requests(ctx: ServerContext, now_ms: int) -> int:
    """Pending requests past their TTL are answered "ignored" (recorded as such for risk scoring), then
    answered ones past retention are deleted; returns how many were deleted."""
    await contacts.expire_requests(ctx, now_ms)
    cutoff = now_ms - ctx.settings.contact_request_retention_days * DAY_MS
    async with ctx.sessions() as session, session.begin():
        return await RetentionRepository(session).delete_answered_contact_requests(cutoff)


async def sweep_console_sessions(ctx: ServerContext, now_ms: int) -> int:
    async with ctx.sessions() as session, session.begin():
        return await RetentionRepository(session).delete_expired_console_sessions(now_ms)


async def sweep_notices(ctx: ServerContext, now_ms: int) -> int:
    cutoff = now_ms - ctx.settings.notice_retention_days * DAY_MS
    async with ctx.sessions() as session, session.begin():
        return await RetentionRepository(session).delete_notices(cutoff)


async def sweep_vouchers(ctx: ServerContext, now_ms: int) -> int:
    cutoff = now_ms - ctx.settings.voucher_retention_days * DAY_MS
    async with ctx.sessions() as session, session.begin():
        return await RetentionRepository(session).delete_vouchers(cutoff)


async def sweep_image_matches(ctx: ServerContext, now_ms: int) -> int:
    cutoff = now_ms - ctx.settings.report_retention_days * DAY_MS
    async with ctx.sessions() as session, session.begin():
        return await RetentionRepository(session).delete_closed_image_matches(cutoff)


async def sweep_membership_periods(ctx: ServerContext, now_ms: int) -> int:
    cutoff = now_ms - ctx.settings.membership_history_days * DAY_MS
    async with ctx.sessions() as session, session.begin():
        return await RetentionRepository(session).delete_closed_membership_periods(cutoff)


async def sweep_reports(ctx: ServerContext, now_ms: int) -> int:
    return await reports.sweep_expired_reports(ctx, now_ms)


async def sweep_blobs(ctx: ServerContext, now_ms: int) -> int:
    return await blobs.sweep_expired_blobs(ctx, now_ms)


async def sweep_blob_leftovers(ctx: ServerContext, now_ms: int) -> int:
    return await blobs.sweep_blob_leftovers(ctx, now_ms)


SWEEPS: tuple[Sweep, ...] = (
    Sweep("metadata_events", sweep_metadata_events),
    Sweep("delivered_messages", sweep_delivered_messages),
    Sweep("abandoned_queue_entries", sweep_abandoned_queue_entries),
    Sweep("contact_requests", sweep_contact_requests),
    Sweep("console_sessions", sweep_console_sessions),
    Sweep("notices", sweep_notices),
    Sweep("vouchers", sweep_vouchers),
    Sweep("image_matches", sweep_image_matches),
    Sweep("membership_periods", sweep_membership_periods),
    Sweep("reports", sweep_reports),
    Sweep("blobs", sweep_blobs),
    Sweep("risk_history", risk_history.sweep_risk_history),
    Sweep("blob_leftovers", sweep_blob_leftovers),
    Sweep("deleted_accounts", deletion.finish_pending_deletions),
    # Not a deletion but the same kind of job: bands move on by date, so no birth date needs keeping.
    Sweep("age_bands", accounts.move_age_bands),
)


async def run_sweep(ctx: ServerContext, sweep: Sweep, now_ms: int | None = None) -> int:
    """One run of `sweep` at `now_ms` (default: the server clock), recorded in `ctx.retention`. Raises
    whatever the sweep raised (also recorded)."""
    now = ctx.clock_ms() if now_ms is None else now_ms
    try:
        deleted = await sweep.run(ctx, now)
    except Exception as error:
        ctx.retention.failed(sweep.name, error)
        raise
    ctx.retention.succeeded(sweep.name, deleted, now)
    return deleted


async def sweep_forever(ctx: ServerContext, sweep: Sweep) -> None:
    """Runs `sweep` now and then every VIGIL_RETENTION_SWEEP_INTERVAL_SECONDS; a failed run is logged
    (by exception type only) and retried next round, never fatal."""
    while True:
        try:
            deleted = await run_sweep(ctx, sweep)
            if deleted:
                log.info("retention: %s deleted %d", sweep.name, deleted)
        except Exception as error:
            log.warning("retention: %s failed: %s", sweep.name, type(error).__name__)
        await asyncio.sleep(ctx.settings.retention_sweep_interval_seconds)


def start_sweeps(ctx: ServerContext) -> list[asyncio.Task[None]]:
    """One task per sweep; the caller cancels them on shutdown."""
    return [
        asyncio.create_task(sweep_forever(ctx, sweep), name=f"retention:{sweep.name}") for sweep in SWEEPS
    ]

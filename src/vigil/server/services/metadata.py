"""The server's metadata event log (DESIGN.md §3 "Behaviour"): exactly what the server legitimately sees,
as `vigil.safety.behavior.events` events, recorded by the services that see it in the same transaction.

`record` is the one call the other services make; `load_events` feeds the risk scoring; `sweep_expired_
events` enforces the retention limit (`VIGIL_METADATA_RETENTION_DAYS`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.protocol.reports import ReportReason
from vigil.protocol.wire import MessageKind
from vigil.safety.behavior import events as ev
from vigil.safety.behavior.events import (
    GroupId,
    MessageSent,
    MetadataEvent,
    UserId,
    event_from_record,
    event_to_record,
)
from vigil.server.context import ServerContext
from vigil.server.db.metadata import MetadataEventRow, MetadataRepository
from vigil.server.services.preservation import held_data

__all__ = [
    "DAY_MS",
    "LOG_RESOLUTION_MS",
    "UNKNOWN_SIZE_BUCKET",
    "block_event",
    "event_of_row",
    "load_events",
    "message_event",
    "record",
    "record_group_created",
    "record_many",
    "report_event",
    "row_of_event",
    "sweep_expired_events",
    "timeline",
    "values_of_event",
]

DAY_MS = 24 * 3600 * 1000
# The log keeps whole seconds, not milliseconds (issue 16: coarser times where features allow). Every risk
# feature reads day buckets or the hour of day (night-time), which flooring to the second never changes,
# or spans of hours (early media, 72 h), which it moves by under a second; events in one second keep
# their order by id.
# Coarser than this would outrun the risk loop's re-read margin (`risk.REREAD_MS`, 60 s).
LOG_RESOLUTION_MS = 1000
# The log keeps no message size (no risk feature reads one); events read back carry this placeholder.
UNKNOWN_SIZE_BUCKET = 0


def row_of_event(event: MetadataEvent) -> MetadataEventRow:
    return MetadataEventRow(**values_of_event(event))


def values_of_event(event: MetadataEvent) -> dict[str, Any]:
    """The event's column values (for a Core insert)."""
    rec = event_to_record(event)
    return {
        "at_ms": rec["t"] - rec["t"] % LOG_RESOLUTION_MS,
        "kind": rec["k"],
        "actor": rec["s"],
        "target": rec.get("r"),
        "group_id": rec.get("g"),
        "content": rec.get("c"),
        "reason": rec.get("why"),
    }


def event_of_row(row: MetadataEventRow | Row[Any]) -> MetadataEvent:
    """Raises ValidationError on a corrupt row."""
    rec: dict[str, object] = {"k": row.kind, "t": row.at_ms, "s": row.actor}
    if row.kind == ev.EventKind.MESSAGE_SENT.value:
        rec["b"] = UNKNOWN_SIZE_BUCKET
    for key, value in (
        ("r", row.target),
        ("g", row.group_id),
        ("c", row.content),
        ("why", row.reason),
    ):
        if value is not None:
            rec[key] = value
    return event_from_record(rec)


def message_event(
    at_ms: int, sender: str, *, recipient: str | None, group: str | None, size_bucket: int, kind: MessageKind
) -> MessageSent:
    return MessageSent(
        at_ms,
        UserId(sender),
        None if recipient is None else UserId(recipient),
        None if group is None else GroupId(group),
        size_bucket,
        kind,
    )


def block_event(at_ms: int, blocker: str, blocked: str) -> ev.Block:
    return ev.Block(at_ms, UserId(blocker), UserId(blocked))


_REASONS = {
    ReportReason.CSAM: ev.ReportReason.SEXUAL_CONTENT,
    ReportReason.GROOMING: ev.ReportReason.GROOMING,
    ReportReason.SEXTORTION: ev.ReportReason.SEXTORTION,
    ReportReason.HARASSMENT: ev.ReportReason.HARASSMENT,
    ReportReason.SPAM: ev.ReportReason.SPAM,
    ReportReason.OTHER: ev.ReportReason.OTHER,
}


def report_event(at_ms: int, reporter: str, reported: str, reason: ReportReason) -> ev.ReportFiled:
    return ev.ReportFiled(at_ms, UserId(reporter), UserId(reported), _REASONS[reason])


async def record_group_created(
    session: AsyncSession,
    at_ms: int,
    by: str,
    group_id: str,
    members: Sequence[str],
    *,
    created: bool = True,
) -> None:
    """A group's creation (when `created`) and the members `by` added to it."""
    group = GroupId(group_id)
    if created:
        await record(session, ev.GroupCreated(at_ms, UserId(by), group))
    for member in members:
        await record(session, ev.GroupMemberAdded(at_ms, UserId(by), UserId(member), group))


async def record(session: AsyncSession, event: MetadataEvent) -> None:
    """Adds `event` to the log in the caller's transaction (repositories never commit)."""
    MetadataRepository(session).add(row_of_event(event))


async def record_many(session: AsyncSession, events: Sequence[MetadataEvent]) -> None:
    """Adds the events to the log in the caller's transaction with one Core statement (a send batch's
    events: the ORM unit of work cost more than the insert)."""
    await MetadataRepository(session).add_values([values_of_event(e) for e in events])


async def load_events(session: AsyncSession, since_ms: int, until_ms: int) -> list[MetadataEvent]:
    """Events with `since_ms <= at < until_ms`, in time order."""
    return [event_of_row(r) for r in await MetadataRepository(session).between(since_ms, until_ms)]


async def timeline(session: AsyncSession, username: UserId, *, limit: int = 50) -> Sequence[MetadataEvent]:
    """The latest `limit` events the account took part in, oldest first (for a case)."""
    rows = await MetadataRepository(session).latest_involving(username, limit)
    return [event_of_row(r) for r in reversed(rows)]


async def sweep_expired_events(ctx: ServerContext, now_ms: int | None = None) -> int:
    """Deletes events older than the retention limit, except those of accounts under a preservation hold;
    returns how many."""
    now = ctx.clock_ms() if now_ms is None else now_ms
    cutoff = now - ctx.settings.metadata_retention_days * DAY_MS
    async with ctx.sessions() as session, session.begin():
        held = await held_data(session)
        return await MetadataRepository(session).delete_before(cutoff, keep_usernames=held.usernames)

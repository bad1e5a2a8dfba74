"""The server's metadata event log (DESIGN.md §3 "Behaviour"): exactly what the server legitimately sees,
as `vigil.safety.behavior.events` events, recorded by the services that see it in the same transaction.

`record` is the one call the other services make; `load_events` feeds the risk scoring; `sweep_expired_
events` enforces the retention limit (`VIGIL_METADATA_RETENTION_DAYS`).

Services build events naming accounts by username (as the behaviour layer's ids); the log stores each
account's pseudonym instead (`vigil.server.db.pseudonyms`), translated here on the way in. Reading back,
`load_events` gives pseudonyms (opaque ids are all scoring needs) unless asked to name the accounts.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.errors import ValidationError
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
from vigil.server.db.accounts import UserRepository, UserRow
from vigil.server.db.metadata import EventColumns, MetadataEventRow, MetadataRepository
from vigil.server.db.pseudonyms import pseudonym

__all__ = [
    "DAY_MS",
    "LOG_RESOLUTION_MS",
    "UNKNOWN_SIZE_BUCKET",
    "block_event",
    "event_of_row",
    "events_of_column_rows",
    "load_events",
    "message_event",
    "pseudonym_of",
    "pseudonyms_to_usernames",
    "record",
    "record_group_created",
    "record_many",
    "renamed",
    "report_event",
    "row_of_event",
    "rows_of_events",
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


_MESSAGE_KIND = ev.EventKind.MESSAGE_SENT.value
_MESSAGE_KINDS = {kind.value: kind for kind in MessageKind}


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


def event_of_row(row: MetadataEventRow) -> MetadataEvent:
    """Raises ValidationError on a corrupt row."""
    return _event_of_columns(
        row.at_ms, row.kind, row.actor, row.target, row.group_id, row.content, row.reason
    )


def events_of_column_rows(rows: Iterable[EventColumns]) -> Iterator[MetadataEvent]:
    """The events of rows read as `MetadataRepository.columns_between` gives them (`id` first, then the
    columns in table order); unpacked by position, as a Row's attribute access costs ~100x an index.
    Raises ValidationError on a corrupt row."""
    for _, at_ms, kind, actor, target, group_id, content, reason in rows:
        yield _event_of_columns(at_ms, kind, actor, target, group_id, content, reason)


def _event_of_columns(
    at_ms: int,
    kind: str,
    actor: str,
    target: str | None,
    group_id: str | None,
    content: str | None,
    reason: str | None,
) -> MetadataEvent:
    """The event of one row's columns. Raises ValidationError on a corrupt row."""
    if kind == _MESSAGE_KIND:
        # Most of the log: built directly (the scorer reads thousands a pass), checked as
        # `event_from_record` checks it.
        if (target is None) == (group_id is None):
            raise ValidationError("malformed message event: needs exactly one of recipient and group")
        message_kind = _MESSAGE_KINDS.get(content)  # type: ignore[arg-type]
        if message_kind is None:
            raise ValidationError(f"malformed message event: unknown content kind {content!r}")
        return MessageSent(
            int(at_ms),
            cast(UserId, actor),
            cast(UserId | None, target),
            cast(GroupId | None, group_id),
            UNKNOWN_SIZE_BUCKET,
            message_kind,
        )
    rec: dict[str, object] = {"k": kind, "t": at_ms, "s": actor}
    for key, value in (
        ("r", target),
        ("g", group_id),
        ("c", content),
        ("why", reason),
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
    ctx: ServerContext,
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
    events: list[MetadataEvent] = [ev.GroupCreated(at_ms, UserId(by), group)] if created else []
    events += [ev.GroupMemberAdded(at_ms, UserId(by), UserId(member), group) for member in members]
    await record_many(ctx, session, events)


async def record(ctx: ServerContext, session: AsyncSession, event: MetadataEvent) -> None:
    """Adds `event` to the log in the caller's transaction (repositories never commit)."""
    await record_many(ctx, session, [event])


async def record_many(
    ctx: ServerContext,
    session: AsyncSession,
    events: Sequence[MetadataEvent],
    user_ids: Mapping[str, int] | None = None,
) -> None:
    """Adds the events to the log in the caller's transaction with one Core statement (a send batch's
    events: the ORM unit of work cost more than the insert), each account named by its pseudonym.
    `user_ids` are account ids the caller already holds, by username (the others are looked up).
    Raises ValidationError when an event names no account."""
    await MetadataRepository(session).add_values(await rows_of_events(ctx, session, events, user_ids))


async def rows_of_events(
    ctx: ServerContext,
    session: AsyncSession,
    events: Sequence[MetadataEvent],
    user_ids: Mapping[str, int] | None = None,
) -> list[dict[str, Any]]:
    """The events as `metadata_events` column values, accounts named by pseudonym (`record_many`'s rows,
    for a caller that inserts them itself). Raises ValidationError when an event names no account."""
    if not events:
        return []
    rows = [values_of_event(e) for e in events]
    names = {r["actor"] for r in rows} | {r["target"] for r in rows if r["target"] is not None}
    ids = {name: user_ids[name] for name in names if user_ids is not None and name in user_ids}
    if unknown := names - ids.keys():
        found = await session.execute(
            select(UserRow.username, UserRow.id).where(UserRow.username.in_(unknown))
        )
        ids.update({str(name): int(user_id) for name, user_id in found.all()})
    if missing := names - ids.keys():
        raise ValidationError(f"metadata event names {len(missing)} unknown account(s)")
    pseudonym_of_name = {name: pseudonym(ctx.pseudonym_key, user_id) for name, user_id in ids.items()}
    for row in rows:
        row["actor"] = pseudonym_of_name[row["actor"]]
        if row["target"] is not None:
            row["target"] = pseudonym_of_name[row["target"]]
    return rows


def pseudonym_of(ctx: ServerContext, user_id: int) -> UserId:
    """The log's name for an account."""
    return UserId(pseudonym(ctx.pseudonym_key, user_id))


async def pseudonyms_to_usernames(
    ctx: ServerContext, session: AsyncSession, user_ids: Collection[int] | None = None
) -> dict[str, str]:
    """Pseudonym -> username, for the accounts in `user_ids` (every account when None): the way back,
    for the features that must name an account (a case timeline, the simulator's output)."""
    query = select(UserRow.id, UserRow.username)
    if user_ids is not None:
        query = query.where(UserRow.id.in_(list(user_ids)))
    return {pseudonym(ctx.pseudonym_key, i): name for i, name in (await session.execute(query)).all()}


def renamed(event: MetadataEvent, names: Mapping[str, str]) -> MetadataEvent:
    """`event` with its accounts (actor and target) found in `names` replaced by their mapping."""
    rec: dict[str, object] = dict(event_to_record(event))
    for key in ("s", "r"):
        if isinstance(value := rec.get(key), str) and value in names:
            rec[key] = names[value]
    return event_from_record(rec)


async def load_events(
    session: AsyncSession, since_ms: int, until_ms: int, *, names: Mapping[str, str] | None = None
) -> list[MetadataEvent]:
    """Events with `since_ms <= at < until_ms`, in time order, accounts by pseudonym (or renamed through
    `names`, from `pseudonyms_to_usernames`)."""
    events = [event_of_row(r) for r in await MetadataRepository(session).between(since_ms, until_ms)]
    return events if names is None else [renamed(e, names) for e in events]


async def timeline(
    ctx: ServerContext,
    session: AsyncSession,
    user_id: int,
    *,
    limit: int = 50,
    known: Mapping[str, int] | None = None,
) -> Sequence[MetadataEvent]:
    """The latest `limit` events the account took part in, oldest first, accounts by username (for a
    case's reviewers). `known` (pseudonym -> account id, e.g. the risk scorer's) saves working out the
    accounts it names."""
    repository = MetadataRepository(session)
    rows = await repository.latest_involving(pseudonym_of(ctx, user_id), limit)
    wanted = {r.actor for r in rows} | {r.target for r in rows if r.target is not None}
    names = await _names_of(ctx, session, wanted, user_id, known or {})
    return [renamed(event_of_row(r), names) for r in reversed(rows)]


_NAME_SCAN_BATCH = 2000


async def _names_of(
    ctx: ServerContext, session: AsyncSession, wanted: set[str], user_id: int, known: Mapping[str, int]
) -> dict[str, str]:
    """Pseudonym -> username for the `wanted` pseudonyms of account `user_id`'s events: those in `known`,
    then an HMAC per account the server relates to it (whom its events name), then, only while a name is
    unresolved (its relation's record went by retention), over the other accounts in id batches, stopping
    once all are found."""
    found: dict[str, int] = {alias: known[alias] for alias in wanted if alias in known}
    tried: set[int] = set(found.values())

    def resolve(ids: Collection[int]) -> None:
        for account_id in ids:
            if account_id not in tried:
                tried.add(account_id)
                if (alias := pseudonym(ctx.pseudonym_key, account_id)) in wanted:
                    found[alias] = account_id

    if wanted - found.keys():
        resolve([user_id, *sorted(await MetadataRepository(session).counterparts_of(user_id))])
    users = UserRepository(session)
    after = 0
    while wanted - found.keys():
        batch = await users.ids_after(after, _NAME_SCAN_BATCH)
        if not batch:
            break  # an account deleted since (its events went with it) or named under another key
        after = batch[-1]
        resolve(batch)
    usernames = {u.id: u.username for u in await users.by_ids(found.values())}
    return {alias: usernames[account_id] for alias, account_id in found.items() if account_id in usernames}


async def sweep_expired_events(ctx: ServerContext, now_ms: int | None = None) -> int:
    """Deletes events older than the retention limit (a preservation hold keeps its own copy in the case);
    returns how many."""
    now = ctx.clock_ms() if now_ms is None else now_ms
    cutoff = now - ctx.settings.metadata_retention_days * DAY_MS
    async with ctx.sessions() as session, session.begin():
        return await MetadataRepository(session).delete_before(cutoff)

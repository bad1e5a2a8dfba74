"""Send, fetch and acknowledge messages: the delivery path of DESIGN.md §3."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.errors import ConflictError, NotFoundError, ValidationError, VigilError
from vigil.protocol.encoding import b64decode, b64encode
from vigil.protocol.franking import FrankingContext, server_tag
from vigil.protocol.ids import UserId
from vigil.protocol.wire import (
    AckRequest,
    Delivery,
    DeviceInfo,
    FetchResponse,
    MessageKind,
    SendAccepted,
    SendRequest,
    StaleDevices,
)
from vigil.safety.behavior.events import MetadataEvent
from vigil.safety.policy import Standing
from vigil.server.batching import Batcher, write_lock
from vigil.server.context import ServerContext
from vigil.server.db.accounts import DeviceRepository
from vigil.server.db.blobs import BlobRepository, BlobRow
from vigil.server.db.engine import one_statement_engine
from vigil.server.db.messaging import MessageRepository, PendingEntry
from vigil.server.db.sending import Recipient, SendingRepository
from vigil.server.delivery import Push
from vigil.server.services import enforcement, metadata
from vigil.server.services.accounts import AuthenticatedDevice
from vigil.server.services.keys import device_info

__all__ = [
    "StaleDevicesError",
    "acknowledge",
    "acknowledge_ids",
    "committed_delivery",
    "fetch_pending",
    "fetch_pending_wire",
    "send_message",
    "size_bucket",
    "to_delivery",
    "wire_delivery",
]


class StaleDevicesError(ConflictError):
    """The sender encrypted for a device set that is not the current one (as Signal-Server's 409)."""

    code = "stale_devices"

    def __init__(self, body: StaleDevices) -> None:
        super().__init__(body.detail)
        self.body = body


def size_bucket(size: int) -> int:
    """Powers of two from 256 bytes: the server records a bucket, not an exact length."""
    bucket = 256
    while bucket < size:
        bucket *= 2
    return bucket


@dataclass(frozen=True, slots=True)
class _Target:
    device_id: str
    username: str


async def send_message(ctx: ServerContext, by: AuthenticatedDevice, request: SendRequest) -> SendAccepted:
    """Accepts one message: checks the device set, tags the commitment, queues one ciphertext per device,
    then wakes the devices. Concurrent sends are committed together (group commit, `_send_batch`); the
    answer comes only after the commit.

    Raises NotFoundError for an unknown recipient, StaleDevicesError when the ciphertexts do not cover
    exactly the recipient's devices plus the sender's other devices, ValidationError for duplicate
    devices or attachment blobs the sender did not upload.
    """
    counts = Counter(c.device_id for c in request.ciphertexts)
    if any(n > 1 for n in counts.values()):
        raise ValidationError("one ciphertext per device")
    batcher: _SendBatcher = ctx.batchers.get("send", lambda items: _send_batch(ctx, items))
    return await batcher.submit((by, request))


_SendBatcher = Batcher[tuple[AuthenticatedDevice, SendRequest], SendAccepted]


@dataclass(slots=True)
class _Planned:
    """A message that passed every check, waiting for the batch's inserts."""

    sender: str
    values: dict[str, Any]
    entries: list[dict[str, Any]]
    event: MetadataEvent | None


def accept_in_batch(
    existing: dict[tuple[int, str], SendAccepted],
    sender_user_id: int,
    message_id: str,
    values: dict[str, Any],
    devices: int,
) -> SendAccepted:
    """The 202 for a message planned in a send batch; a retry later in the same batch is answered as its
    duplicate (shared by the direct and the group send batches)."""
    accepted = SendAccepted(
        message_id=message_id,
        server_ts_ms=values["server_ts_ms"],
        devices=devices,
        franking_tag=b64encode(values["franking_tag"]),
    )
    existing[(sender_user_id, message_id)] = accepted.model_copy(update={"duplicate": True})
    return accepted


@dataclass(slots=True)
class _BatchState:
    """What one batch transaction already looked up. Sends change none of it (users, devices, standing,
    blocks, connections), so a recipient looked up for an earlier message of the batch holds for a later
    one. Only recipients whose send check passed are kept: a refusal is looked up again (a restricted
    sender's "existing conversation" can start within the batch)."""

    existing: dict[tuple[int, str], SendAccepted] = field(default_factory=dict)
    allowed: dict[tuple[int, str], Recipient] = field(default_factory=dict)
    user_ids: dict[str, int] = field(default_factory=dict)  # of every sender and recipient, by username


async def _send_batch(
    ctx: ServerContext, items: Sequence[tuple[AuthenticatedDevice, SendRequest]]
) -> list[SendAccepted | Exception]:
    """One transaction for the whole batch; a message refused by a check fails alone. If the transaction
    itself fails (e.g. a concurrent retry of the same id committed by another process), every message
    of a multi-message batch is retried in its own transaction so a failure stays with its message.

    Retries of messages committed earlier are rare, so the batch does not look for them before its
    checks (a query less per batch) unless a message carries attachments (whose checks write). A
    retry is still answered as the duplicate it is: a refused message is looked up before the refusal
    is answered, and one that passed its checks fails the insert on the unique (sender, client id)
    constraint, after which the batch runs again, looking first."""
    try:
        try:
            return await _send_batch_once(ctx, items, look_up_first=False)
        except IntegrityError:
            return await _send_batch_once(ctx, items, look_up_first=True)
    except Exception:
        if len(items) == 1:
            raise
        alone: list[SendAccepted | Exception] = []
        for item in items:
            try:
                alone.extend(await _send_batch(ctx, [item]))
            except Exception as error:  # this message's own failure
                alone.append(error)
        return alone


async def _send_batch_once(
    ctx: ServerContext, items: Sequence[tuple[AuthenticatedDevice, SendRequest]], *, look_up_first: bool
) -> list[SendAccepted | Exception]:
    attachments = any(request.attachments for _, request in items)
    look_up_first = look_up_first or attachments
    # Without attachments the batch writes with one statement on PostgreSQL (`insert_batch`) after reads
    # that, under READ COMMITTED, see no more inside a transaction than outside one: no BEGIN and COMMIT
    # round trips. Attachment checks write (the blobs' fetchers) and keep the transaction.
    bind = ctx.engine if attachments else one_statement_engine(ctx.engine)
    results: list[SendAccepted | Exception] = []
    refused: list[int] = []
    planned: list[_Planned] = []
    async with write_lock(ctx.engine), ctx.sessions(bind=bind) as session, session.begin():
        state = _BatchState(existing=await _existing(session, items) if look_up_first else {})
        for by, request in items:
            try:
                outcome = await _prepare(ctx, session, state, by, request)
            except VigilError as error:
                refused.append(len(results))
                results.append(error)
                continue
            if isinstance(outcome, SendAccepted):
                results.append(outcome)
                continue
            planned.append(outcome)
            results.append(
                accept_in_batch(state.existing, by.user_id, request.id, outcome.values, len(outcome.entries))
            )
        if refused and not look_up_first:  # a retry of an accepted message is answered, not refused
            earlier = await _existing(session, [items[i] for i in refused])
            for i in refused:
                by, request = items[i]
                results[i] = earlier.get((by.user_id, request.id), results[i])
        if planned:
            events = await metadata.rows_of_events(
                ctx, session, [p.event for p in planned if p.event is not None], state.user_ids
            )
            inserted = await SendingRepository(session).insert_batch(
                [(p.values, p.entries) for p in planned], events
            )
    if planned:
        handed: dict[str, list[Push]] = {}
        for p, entry_ids in zip(planned, inserted, strict=True):
            for entry, entry_id in zip(p.entries, entry_ids, strict=True):
                handed.setdefault(entry["device_id"], []).append(
                    Push.of(
                        committed_delivery(p.sender, p.values, entry_id, entry["message_type"], entry["body"])
                    )
                )
        await ctx.delivery.hand_off(handed)
    return results


def committed_delivery(
    sender: str, message: dict[str, Any], entry_id: int, message_type: int, body: bytes
) -> dict[str, Any]:
    """The wire form of an entry just committed, built from what the send already holds."""
    return wire_delivery(
        PendingEntry(
            entry_id,
            "",
            message_type,
            body,
            message["client_id"],
            message["sender_device_id"],
            message["conversation"],
            message["kind"],
            message["commitment"],
            message["franking_tag"],
            message["server_ts_ms"],
            sender,
        )
    )


async def _existing(
    session: AsyncSession, items: Sequence[tuple[AuthenticatedDevice, SendRequest]]
) -> dict[tuple[int, str], SendAccepted]:
    """Earlier accepted messages with the batch's (sender, client id) pairs, in one query."""
    wanted = {(by.user_id, request.id) for by, request in items}
    rows = await MessageRepository(session).by_client_ids(wanted)
    return {
        (row.sender_user_id, row.client_id): SendAccepted(
            message_id=row.client_id,
            server_ts_ms=row.server_ts_ms,
            devices=row.device_count,
            duplicate=True,
            franking_tag=b64encode(row.franking_tag),
        )
        for row in rows
    }


async def _prepare(
    ctx: ServerContext,
    session: AsyncSession,
    state: _BatchState,
    by: AuthenticatedDevice,
    request: SendRequest,
) -> SendAccepted | _Planned:
    """Every check of one message, in the order the single-message path made them; nothing is written
    before the last check passed (attachment fetchers are written last)."""
    previous = state.existing.get((by.user_id, request.id))
    if previous is not None:
        return previous
    recipient = state.allowed.get((by.user_id, request.to))
    if recipient is None:
        recipient = await SendingRepository(session).recipient(by.user_id, request.to)
        if recipient is None:
            raise NotFoundError(f"no user named {request.to}")
        standing = (
            Standing.ACTIVE if recipient.sender_standing is None else Standing(recipient.sender_standing)
        )
        await enforcement.check_send_given(
            session,
            enforcement.SendParties(
                by.user_id, by.username, recipient.user_id, UserId(recipient.username), recipient.age_band
            ),
            standing,
            blocked_by_recipient=recipient.blocked_by_recipient,
            connected=recipient.connected,
        )
        state.allowed[(by.user_id, request.to)] = recipient
        state.user_ids[by.username] = by.user_id
        state.user_ids[recipient.username] = recipient.user_id
    recipient_devices = recipient.device_ids[recipient.user_id]
    own_devices = [] if recipient.user_id == by.user_id else recipient.device_ids[by.user_id]
    expected = {d: _Target(d, recipient.username) for d in recipient_devices if d != by.device_id} | {
        d: _Target(d, by.username) for d in own_devices if d != by.device_id
    }
    provided = {c.device_id for c in request.ciphertexts}
    if provided != set(expected):
        missing: dict[str, list[str]] = {}
        extra: dict[str, list[str]] = {}
        for device_id in sorted(set(expected) - provided):
            missing.setdefault(expected[device_id].username, []).append(device_id)
        if provided - set(expected):
            extra[request.to] = sorted(provided - set(expected))
        by_user = await DeviceRepository(session).of_users({recipient.user_id, by.user_id})
        current: dict[str, list[DeviceInfo]] = {
            request.to: [device_info(d) for d in by_user[recipient.user_id] if d.id != by.device_id]
        }
        if own_devices:
            current[by.username] = [device_info(d) for d in by_user[by.user_id] if d.id != by.device_id]
        raise StaleDevicesError(
            StaleDevices(
                detail="the device list is out of date; encrypt for exactly these devices",
                missing=missing,
                extra=extra,
                devices=current,
            )
        )
    blobs = BlobRepository(session)
    attached: list[BlobRow] = []
    for blob_id in request.attachments:
        blob = await blobs.get(blob_id)
        if blob is None or blob.uploader_user_id != by.user_id:
            raise ValidationError(f"attachment {blob_id} was not uploaded by the sender")
        attached.append(blob)
    now_ms = ctx.clock_ms()
    commitment = b64decode(request.commitment, field="commitment", max_bytes=32)
    bodies = {c.device_id: (c.type, b64decode(c.body, field="ciphertext body")) for c in request.ciphertexts}
    for blob in attached:
        fetchers = [d for d in expected if not await blobs.is_fetcher(blob.id, d)]
        await blobs.add_fetchers(blob.id, fetchers)
        blob.attached = True
    tag = server_tag(
        ctx.franking_key,
        FrankingContext(commitment, by.username, request.to, now_ms, request.id),
    )
    bucket = size_bucket(max(len(body) for _, body in bodies.values()))
    values = {
        "client_id": request.id,
        "sender_user_id": by.user_id,
        "sender_device_id": by.device_id,
        "conversation": request.to,
        "kind": request.kind.value,
        "commitment": commitment,
        "franking_tag": tag,
        "server_ts_ms": now_ms,
        "device_count": len(bodies),
    }
    entries = [{"device_id": d, "message_type": kind, "body": body} for d, (kind, body) in bodies.items()]
    event = None
    if recipient.user_id != by.user_id:
        event = metadata.message_event(
            now_ms,
            by.username,
            recipient=recipient.username,
            group=None,
            size_bucket=bucket,
            kind=request.kind,
        )
    return _Planned(by.username, values, entries, event)


def wire_delivery(entry: PendingEntry) -> dict[str, Any]:
    """The entry as `Delivery.model_dump(mode="json")` would give it, without building the model (the
    push path sends thousands a second; the shape is pinned by a unit test against `Delivery`)."""
    if entry.message_type not in (0, 1, 2):  # 2: a Megolm group message (services/groups.py)
        raise ValidationError("corrupt queue entry")
    return {
        "delivery_id": entry.id,
        "message_id": entry.client_id,
        "sender": entry.sender,
        "sender_device": entry.sender_device_id,
        "conversation": entry.conversation,
        "kind": entry.kind,
        "commitment": b64encode(entry.commitment),
        "franking_tag": b64encode(entry.franking_tag),
        "server_ts_ms": entry.server_ts_ms,
        "type": entry.message_type,
        "body": b64encode(entry.body),
    }


def to_delivery(entry: PendingEntry) -> Delivery:
    if entry.message_type not in (0, 1, 2):
        raise ValidationError("corrupt queue entry")
    return Delivery(
        delivery_id=entry.id,
        message_id=entry.client_id,
        sender=entry.sender,
        sender_device=entry.sender_device_id,
        conversation=entry.conversation,
        kind=MessageKind(entry.kind),
        commitment=b64encode(entry.commitment),
        franking_tag=b64encode(entry.franking_tag),
        server_ts_ms=entry.server_ts_ms,
        type=cast(Literal[0, 1, 2], entry.message_type),
        body=b64encode(entry.body),
    )


async def fetch_pending(
    ctx: ServerContext, by: AuthenticatedDevice, *, limit: int, after: int = 0, skip: Collection[int] = ()
) -> FetchResponse:
    """Queued entries for the device, oldest first, up to `limit`, leaving out `skip`."""
    async with ctx.sessions() as session:
        rows = await MessageRepository(session).pending(by.device_id, after=after, limit=limit + 1, skip=skip)
    return FetchResponse(messages=[to_delivery(row) for row in rows[:limit]], more=len(rows) > limit)


async def fetch_pending_wire(
    ctx: ServerContext, device_id: str, *, limit: int, skip: Collection[int] = ()
) -> tuple[list[dict[str, Any]], bool]:
    """`fetch_pending` for the WebSocket: wire dicts (`wire_delivery`) and whether more are waiting.
    `skip` are entries already pushed on this socket and not yet acknowledged. Concurrent drains (many
    sockets woken, or connecting, together) share one query (`_drain_batch`)."""
    batcher: _DrainBatcher = ctx.batchers.get("drain", lambda items: _drain_batch(ctx, items))
    rows = await batcher.submit((device_id, limit + 1, frozenset(skip)))
    return [wire_delivery(row) for row in rows[:limit]], len(rows) > limit


_Drain = tuple[str, int, frozenset[int]]
_DrainBatcher = Batcher[_Drain, list[PendingEntry]]


async def _drain_batch(ctx: ServerContext, items: Sequence[_Drain]) -> list[list[PendingEntry] | Exception]:
    """Each (device, limit, skip): up to `limit` queued entries of the device not in `skip`, oldest first."""
    async with ctx.sessions() as session:
        repository = MessageRepository(session)
        if len(items) == 1:
            [(device_id, limit, skip)] = items
            return [await repository.pending(device_id, after=0, limit=limit, skip=skip)]
        wanted: dict[str, int] = {}
        for device_id, limit, skip in items:
            wanted[device_id] = max(wanted.get(device_id, 0), limit + len(skip))
        found = await repository.pending_of_devices(wanted)
    return [
        [entry for entry in found.get(device_id, []) if entry.id not in skip][:limit]
        for device_id, limit, skip in items
    ]


async def acknowledge(ctx: ServerContext, by: AuthenticatedDevice, request: AckRequest) -> int:
    """Deletes acknowledged entries of the caller's own queue; returns how many were deleted. Acking an
    entry twice, or another device's entry, deletes nothing. Concurrent acks (of every socket and
    request) are coalesced into one DELETE per batch."""
    return await acknowledge_ids(ctx, by.device_id, request.delivery_ids)


async def acknowledge_ids(ctx: ServerContext, device_id: str, delivery_ids: Sequence[int]) -> int:
    """`acknowledge` for ids already checked (`AckRequest`'s bounds)."""
    batcher: _AckBatcher = ctx.batchers.get("ack", lambda items: _ack_batch(ctx, items))
    return await batcher.submit((device_id, tuple(delivery_ids)))


_AckBatcher = Batcher[tuple[str, tuple[int, ...]], int]


async def _ack_batch(
    ctx: ServerContext, items: Sequence[tuple[str, tuple[int, ...]]]
) -> list[int | Exception]:
    pairs = {(device_id, entry_id) for device_id, ids in items for entry_id in ids}
    # One DELETE for every pair (atomic and idempotent), then the shared bodies it freed: no transaction
    # around them; a body left by a crash between the two goes at the abandoned-entries sweep.
    async with (
        write_lock(ctx.engine),
        ctx.sessions(bind=one_statement_engine(ctx.engine)) as session,
        session.begin(),
    ):
        deleted = await MessageRepository(session).delete_entries_of(pairs)
    # Each caller counts its own deletions; a pair acked twice in one batch counts for the first caller.
    results: list[int | Exception] = []
    for device_id, ids in items:
        mine = {(device_id, i) for i in ids} & deleted
        deleted -= mine
        results.append(len(mine))
    return results

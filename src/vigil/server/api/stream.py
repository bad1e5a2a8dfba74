"""WebSocket push: drain the device's queue, then push what committed sends hand over (`DeliveryHub`'s
mailbox), reading the queue again only when told to (a wake-up, a hand-off that could not travel, too
many in flight); acks come back on the same socket.

Server frames: `{"type": "deliveries", "messages": [Delivery...]}` and `{"type": "error", ...}`.
Client frames: `{"type": "ack", "delivery_ids": [...]}`. Entries are deleted only on ack, so a dropped
connection redelivers everything unacknowledged on the next one. At most MAX_IN_FLIGHT entries are
unacknowledged on one socket: a client that stops acking stops receiving.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable

import pydantic
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from vigil.errors import AuthenticationError, PolicyViolation
from vigil.protocol.wire import MAX_ACK_IDS, MAX_WIRE_INT, AckRequest
from vigil.server.api.deps import bearer_credential
from vigil.server.context import ServerContext
from vigil.server.delivery import Mailbox, Push, frame_of
from vigil.server.services.accounts import AuthenticatedDevice, authenticate
from vigil.server.services.messaging import acknowledge_ids, fetch_pending_wire

router = APIRouter(tags=["stream"])

UNAUTHENTICATED_CLOSE = 4401
SUSPENDED_CLOSE = 4403  # the HTTP API's 403 policy_violation, as a close code
MAX_FRAME_BYTES = 64 * 1024


MAX_IN_FLIGHT = 500
# Acknowledged entries remembered per socket, so that a hand-off arriving after its entry was already
# fetched, pushed and acked is not pushed twice.
RECENTLY_ACKED = 4096
# An idle socket reads its queue this often anyway: a backstop for a hand-off lost in a way no worker
# noticed (every known loss already turns into a wake-up).
IDLE_FETCH_S = 30.0


class _Pushed:
    """What this socket pushed: unacknowledged (`in_flight`) and recently acknowledged entries."""

    def __init__(self) -> None:
        # Not an "after id N" cursor: on PostgreSQL, ids are assigned at insert but become visible at
        # commit, so a lower id can appear after a higher one was already sent.
        self.in_flight: set[int] = set()
        self._acked: set[int] = set()
        self._acked_order: deque[int] = deque()

    def seen(self, entry_id: int) -> bool:
        return entry_id in self.in_flight or entry_id in self._acked

    def acked(self, entry_ids: list[int]) -> None:
        for entry_id in entry_ids:
            if entry_id in self.in_flight:
                self.in_flight.discard(entry_id)
                self._acked.add(entry_id)
                self._acked_order.append(entry_id)
        while len(self._acked_order) > RECENTLY_ACKED:
            self._acked.discard(self._acked_order.popleft())


async def _read_acks(
    websocket: WebSocket,
    ctx: ServerContext,
    device: AuthenticatedDevice,
    pushed: _Pushed,
    mailbox: Mailbox,
) -> None:
    while True:
        try:
            text = await websocket.receive_text()
        except (WebSocketDisconnect, RuntimeError):
            return
        if len(text) > MAX_FRAME_BYTES:
            await websocket.send_json({"type": "error", "error": "too_large", "detail": "frame too large"})
            continue
        try:
            frame = json.loads(text)
            if not isinstance(frame, dict) or frame.get("type") != "ack":
                raise ValueError("unknown frame type")
            delivery_ids = _ack_ids(frame.get("delivery_ids"))
        except (ValueError, pydantic.ValidationError):
            await websocket.send_json(
                {
                    "type": "error",
                    "error": "invalid_request",
                    "detail": "expected {type: ack, delivery_ids: [...]}",
                }
            )
            continue
        await acknowledge_ids(ctx, device.device_id, delivery_ids)
        _acknowledged(pushed, mailbox, delivery_ids)


def _ack_ids(value: object) -> list[int]:
    """The frame's `delivery_ids` as `AckRequest` reads them. The usual frame (a list of plain ints in
    range) is checked here without building the model; anything else goes through the model, so the
    same frames are accepted and refused either way. Raises pydantic.ValidationError."""
    if (
        type(value) is list
        and 0 < len(value) <= MAX_ACK_IDS
        and all(type(i) is int and 0 < i <= MAX_WIRE_INT for i in value)
    ):
        return value
    return AckRequest.model_validate({"delivery_ids": value}).delivery_ids


def _acknowledged(pushed: _Pushed, mailbox: Mailbox, entry_ids: list[int]) -> None:
    pushed.acked(entry_ids)
    if mailbox.needs_fetch:
        mailbox.wake.set()  # the pusher was waiting for room to read the queue


@router.websocket("/v1/stream")
async def stream(websocket: WebSocket) -> None:
    ctx: ServerContext = websocket.app.state.context
    try:
        device = await authenticate(ctx, bearer_credential(websocket.headers.get("authorization")))
    except AuthenticationError:
        await websocket.close(code=UNAUTHENTICATED_CLOSE)
        return
    except PolicyViolation:
        await websocket.close(code=SUSPENDED_CLOSE)
        return
    await websocket.accept()
    # Subscribed before the first read of the queue: an entry committed meanwhile is in the read or handed.
    mailbox = ctx.delivery.subscribe(device.device_id)
    pushed = _Pushed()
    reader = asyncio.create_task(_read_acks(websocket, ctx, device, pushed, mailbox))

    async def fetch(limit: int) -> tuple[list[Push], bool]:
        batch, more = await fetch_pending_wire(ctx, device.device_id, limit=limit, skip=pushed.in_flight)
        return [Push.of(d) for d in batch], more

    async def send(pushes: list[Push]) -> None:
        await websocket.send_text(frame_of(pushes))

    try:
        await _push(mailbox, pushed, reader, fetch, send, ctx.settings.fetch_batch)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        ctx.delivery.unsubscribe(device.device_id, mailbox)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader


async def _push(
    mailbox: Mailbox,
    pushed: _Pushed,
    reader: asyncio.Task[None],
    fetch: Callable[[int], Awaitable[tuple[list[Push], bool]]],
    send: Callable[[list[Push]], Awaitable[None]],
    fetch_batch: int,
) -> None:
    """Pushes until `reader` ends: reads the queue (`fetch(limit)`: up to `limit` entries not in flight,
    and whether more wait) when the mailbox says so, else pushes what was handed over. Everything
    handed over since the last frame goes in one frame (and so comes back in one ack)."""
    # Waiting is on the mailbox alone (no task, `asyncio.wait` or timer per frame): the reader's end
    # wakes it, and one timer per socket orders the idle read once the mailbox has not been taken from
    # for IDLE_FETCH_S, re-armed for what is left of that period otherwise (so the backstop read comes
    # IDLE_FETCH_S after the last activity, not up to twice that).
    reader.add_done_callback(lambda _: mailbox.wake.set())
    loop = asyncio.get_running_loop()
    idle: asyncio.TimerHandle

    def look_for_idleness() -> None:
        nonlocal idle
        quiet_for = time.monotonic() - mailbox.last_take
        if quiet_for >= IDLE_FETCH_S:
            mailbox.mark_fetch()
            quiet_for = 0.0
        idle = loop.call_later(IDLE_FETCH_S - quiet_for, look_for_idleness)

    idle = loop.call_later(IDLE_FETCH_S, look_for_idleness)
    try:
        while not reader.done():
            needs_fetch, handed = mailbox.take()
            # The queue read first: it returns every committed entry in order, handed ones included.
            while needs_fetch and len(pushed.in_flight) < MAX_IN_FLIGHT:
                batch, more = await fetch(min(fetch_batch, MAX_IN_FLIGHT - len(pushed.in_flight)))
                if batch:
                    pushed.in_flight.update(p.delivery_id for p in batch)
                    await send(batch)
                needs_fetch = more
            fresh = [p for p in handed if not pushed.seen(p.delivery_id)]
            if fresh and len(pushed.in_flight) + len(fresh) <= MAX_IN_FLIGHT:
                pushed.in_flight.update(p.delivery_id for p in fresh)
                await send(fresh)
            elif fresh or needs_fetch:
                # Too many to push at once: read the queue (now if there is room).
                mailbox.needs_fetch = True
            # A queue read still owed while there is room goes round again instead of waiting: with
            # little or nothing in flight no ack may come to wake us (a hand-off larger than the room
            # left), and waiting would leave the entries to the idle read.
            if (mailbox.wake.is_set() or mailbox.needs_fetch) and len(pushed.in_flight) < MAX_IN_FLIGHT:
                continue
            await mailbox.wake.wait()
    finally:
        idle.cancel()

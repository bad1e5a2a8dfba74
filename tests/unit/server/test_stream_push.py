"""The WebSocket pusher's state machine (`stream._push`) under controlled interleavings: a queue in a
list stands in for the database, `send` records frames, and acks go through the same `_acknowledged`
the socket's ack reader calls. Every wait is bounded far below the 30 s idle read, so a socket that
only resumes at the idle read fails here."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from vigil.server.api import stream
from vigil.server.api.stream import IDLE_FETCH_S, MAX_IN_FLIGHT, _acknowledged, _push, _Pushed
from vigil.server.delivery import Mailbox, Push

FETCH_BATCH = 500
WAIT_S = 2.0
assert WAIT_S * 5 < IDLE_FETCH_S


@dataclass
class Socket:
    mailbox: Mailbox = field(default_factory=Mailbox)
    pushed: _Pushed = field(default_factory=_Pushed)
    queue: list[Push] = field(default_factory=list)
    frames: list[list[Push]] = field(default_factory=list)
    sent: asyncio.Event = field(default_factory=asyncio.Event)
    # Called inside `send` before it returns: what the client and the ack reader do while the pusher
    # is blocked writing a frame (a full socket buffer).
    during_send: list[Any] = field(default_factory=list)

    async def fetch(self, limit: int) -> tuple[list[Push], bool]:
        await asyncio.sleep(0)
        waiting = [p for p in self.queue if p.delivery_id not in self.pushed.in_flight]
        return waiting[:limit], len(waiting) > limit

    async def send(self, deliveries: list[Push]) -> None:
        self.frames.append(deliveries)
        self.sent.set()
        await asyncio.sleep(0)
        while self.during_send:
            self.during_send.pop(0)()

    def commit(self, first: int, count: int) -> list[Push]:
        entries = [Push(i, f'{{"delivery_id":{i}}}') for i in range(first, first + count)]
        self.queue.extend(entries)
        return entries

    def ack_everything_in_flight(self) -> None:
        ids = sorted(self.pushed.in_flight)
        self.queue = [p for p in self.queue if p.delivery_id not in self.pushed.in_flight]
        _acknowledged(self.pushed, self.mailbox, ids)

    def pushed_ids(self) -> list[int]:
        return [p.delivery_id for frame in self.frames for p in frame]

    async def until_pushed(self, count: int) -> None:
        async def reached() -> None:
            while len(self.pushed_ids()) < count:
                self.sent.clear()
                await self.sent.wait()

        await asyncio.wait_for(reached(), WAIT_S)


@pytest.fixture
async def socket() -> AsyncIterator[Socket]:
    connected = Socket()
    reader = asyncio.create_task(asyncio.Event().wait())  # the ack reader: open until the test ends
    pusher = asyncio.create_task(
        _push(connected.mailbox, connected.pushed, reader, connected.fetch, connected.send, FETCH_BATCH)
    )
    await asyncio.sleep(0.01)  # the first read of the (empty) queue
    yield connected
    reader.cancel()
    pusher.cancel()
    await asyncio.gather(reader, pusher, return_exceptions=True)


async def test_a_hand_off_larger_than_the_room_left_is_read_from_the_queue_at_once(socket: Socket) -> None:
    # Nothing in flight, then one hand-off of more entries than may be in flight: no ack will ever
    # come to wake the pusher, so it must read the queue itself instead of waiting for the idle read.
    socket.mailbox.put(socket.commit(1, MAX_IN_FLIGHT + 100))
    await socket.until_pushed(MAX_IN_FLIGHT)
    assert socket.pushed_ids() == list(range(1, MAX_IN_FLIGHT + 1))

    socket.ack_everything_in_flight()
    await socket.until_pushed(MAX_IN_FLIGHT + 100)
    assert socket.pushed_ids() == list(range(1, MAX_IN_FLIGHT + 101))


async def test_acks_processed_while_the_frame_filling_the_socket_is_written_do_not_stall_it(
    socket: Socket,
) -> None:
    # The client acks everything in flight while the pusher is still blocked writing the frame that
    # filled the socket (full buffers, slow loop): the ack finds no read owed yet, so nothing wakes
    # the pusher from it; the pusher must notice the room itself.
    socket.mailbox.mark_fetch()
    socket.commit(1, 2 * MAX_IN_FLIGHT + 10)
    socket.during_send.append(socket.ack_everything_in_flight)
    await socket.until_pushed(MAX_IN_FLIGHT * 2)
    assert socket.pushed_ids() == list(range(1, 2 * MAX_IN_FLIGHT + 1))

    socket.ack_everything_in_flight()
    await socket.until_pushed(2 * MAX_IN_FLIGHT + 10)
    assert socket.pushed_ids() == list(range(1, 2 * MAX_IN_FLIGHT + 11))


async def test_a_socket_that_stops_acking_gets_no_more_than_the_in_flight_limit(socket: Socket) -> None:
    socket.mailbox.put(socket.commit(1, MAX_IN_FLIGHT))
    await socket.until_pushed(MAX_IN_FLIGHT)
    socket.mailbox.put(socket.commit(MAX_IN_FLIGHT + 1, 5))
    await asyncio.sleep(0.1)
    assert len(socket.pushed_ids()) == MAX_IN_FLIGHT

    socket.ack_everything_in_flight()
    await socket.until_pushed(MAX_IN_FLIGHT + 5)
    assert socket.pushed_ids()[MAX_IN_FLIGHT:] == list(range(MAX_IN_FLIGHT + 1, MAX_IN_FLIGHT + 6))


async def test_hand_offs_waiting_together_go_in_one_frame(socket: Socket) -> None:
    # Three commits handed over before the pusher runs again: one frame (and so one ack), in order.
    for first in (1, 3, 5):
        socket.mailbox.put(socket.commit(first, 2))
    await socket.until_pushed(6)
    assert socket.frames == [[Push(i, f'{{"delivery_id":{i}}}') for i in range(1, 7)]]


async def test_the_pusher_ends_as_soon_as_the_ack_reader_does() -> None:
    connected = Socket()
    reader = asyncio.create_task(asyncio.Event().wait())
    pusher = asyncio.create_task(
        _push(connected.mailbox, connected.pushed, reader, connected.fetch, connected.send, FETCH_BATCH)
    )
    await asyncio.sleep(0.01)  # waiting on an empty mailbox
    reader.cancel()
    await asyncio.wait_for(pusher, WAIT_S)  # not at the idle read


async def test_an_entry_nobody_announced_is_read_at_the_idle_read(monkeypatch: pytest.MonkeyPatch) -> None:
    # A hand-off lost in a way no worker noticed: the entry is only in the queue, and only the idle
    # read (every IDLE_FETCH_S without a wake-up) finds it; a busy socket is not read for idleness.
    monkeypatch.setattr(stream, "IDLE_FETCH_S", 0.05)
    connected = Socket()
    reader = asyncio.create_task(asyncio.Event().wait())
    pusher = asyncio.create_task(
        _push(connected.mailbox, connected.pushed, reader, connected.fetch, connected.send, FETCH_BATCH)
    )
    try:
        await asyncio.sleep(0.01)
        connected.commit(1, 1)  # committed, never handed over nor announced
        await connected.until_pushed(1)
        assert connected.pushed_ids() == [1]
    finally:
        reader.cancel()
        await asyncio.wait_for(asyncio.gather(reader, pusher, return_exceptions=True), WAIT_S)

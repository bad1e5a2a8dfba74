"""Delivery to the app is durable: each event is stored (with the state its delivery changed) before the
ack and handed out until the app consumed it. A failed ack, a failure between two pages or a client
abandoned at any point (a crash: its memory is gone, its store is reopened) loses no message and, once
consumed, never shows one twice."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes import PASSPHRASE, FakeServer, FakeTransport, new_client, start

from vigil.client.client import Client
from vigil.client.device import HistoryEntry
from vigil.client.engine import Changes
from vigil.client.events import (
    Event,
    GroupUpdated,
    ImageWithheld,
    KeyChangeWarning,
    MessageEvent,
    ReceivedAttachment,
    RejectedDelivery,
    SasCancelled,
    SasCompleted,
    SasRequested,
    SasShowCode,
    event_from_record,
    event_record,
)
from vigil.client.store import DEVICE_MIGRATIONS, DeviceStore, migrate
from vigil.errors import StorageError
from vigil.protocol.ids import DeviceId, GroupId, MessageId, UserId
from vigil.protocol.verification import SasCancelCode, SasEmoji
from vigil.protocol.wire import FetchResponse, MessageKind


class FaultyTransport:
    """The fake transport, with a failure injected where a test asks for one (as a killed server or a
    dropped connection shows itself to the client), and a WebSocket stream over the fake queue."""

    def __init__(self, inner: Any, *, fail_ack: bool = False, pages: int | None = None) -> None:
        self._inner = inner
        self.fail_ack = fail_ack
        self.pages = pages  # fetch one delivery a page, and fail after this many pages

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def fetch(self, after: int = 0, limit: int = 100) -> FetchResponse:
        response: FetchResponse
        if self.pages is None:
            response = await self._inner.fetch(after, limit)
            return response
        if self.pages == 0:
            raise httpx.ConnectError("the server went away between two pages")
        self.pages -= 1
        response = await self._inner.fetch(after, 1)
        return response

    async def ack(self, delivery_ids: list[int]) -> None:
        if self.fail_ack:
            raise httpx.ConnectError("the server went away before the ack")
        await self._inner.ack(delivery_ids)

    async def stream(self) -> AsyncIterator[tuple[list[Any], Callable[[list[int]], Awaitable[None]]]]:
        queue = list(self._inner.server.device(self._inner.username, self._inner.device_id).queue)
        if queue:
            yield queue, self.ack


def _inject(client: Client, transport: object) -> None:
    client.core.transport = transport  # type: ignore[assignment]


def _bodies(client: Client) -> list[str]:
    return [str(record["payload"]["body"]) for record in client.history("alice")]  # type: ignore[index]


def _registered(client: Client) -> Client:
    """Writes what `Client.register` stores besides the keys, so the store can be reopened."""
    for name, value in (
        ("server_url", "http://fake"),
        ("username", client.username),
        ("device_id", client.device_id),
        ("credential", "unused"),
    ):
        client.store.set_secret(name, value)
    return client


async def _restart(client: Client, server: FakeServer, **faults: Any) -> Client:
    """The same device after a crash: a new process opens its store; nothing in memory survives."""
    reopened = await Client.open(client.store.path, PASSPHRASE)
    await reopened.transport.close()
    fake = FakeTransport(server, client.username, client.device_id)
    _inject(reopened, FaultyTransport(fake, **faults))
    return reopened


async def _pair(tmp_path: Path, server: FakeServer, *texts: str) -> tuple[Client, Client]:
    alice = await start(new_client(server, tmp_path, "alice"))
    bob = _registered(await start(new_client(server, tmp_path, "bob")))
    for text in texts:
        await alice.send_text("bob", text)
    return alice, bob


def _texts(events: list[Event]) -> list[str]:
    return [e.text for e in events if isinstance(e, MessageEvent)]


async def test_events_are_handed_out_until_consumed_and_then_never_again(tmp_path: Path) -> None:
    server = FakeServer()
    _alice, bob = await _pair(tmp_path, server, "one", "two")
    assert _texts(await bob.fetch()) == ["one", "two"]
    assert server.device("bob", "BOB1").queue == []  # stored, so acknowledged

    bob = await _restart(bob, server)  # crashed before consuming: handed out again
    assert _texts(await bob.fetch()) == ["one", "two"]
    assert _texts(await bob.fetch()) == []  # the second call consumed them
    bob = await _restart(bob, server)
    assert _texts(await bob.fetch()) == []


async def test_consume_marks_what_was_handed_out(tmp_path: Path) -> None:
    server = FakeServer()
    _alice, bob = await _pair(tmp_path, server, "one")
    assert _texts(await bob.fetch()) == ["one"]
    bob.consume()
    bob = await _restart(bob, server)
    assert await bob.fetch() == []


async def test_a_clean_close_consumes_and_leaving_async_with_by_an_exception_does_not(tmp_path: Path) -> None:
    server = FakeServer()
    _alice, bob = await _pair(tmp_path, server, "one")
    with pytest.raises(RuntimeError):
        async with bob:
            assert _texts(await bob.fetch()) == ["one"]
            raise RuntimeError("the app failed while showing it")
    bob = await _restart(bob, server)
    async with bob:
        assert _texts(await bob.fetch()) == ["one"]
    bob = await _restart(bob, server)
    assert await bob.fetch() == []


async def test_a_failed_ack_loses_nothing_and_the_redelivery_shows_once(tmp_path: Path) -> None:
    server = FakeServer()
    _alice, bob = await _pair(tmp_path, server, "hello")
    _inject(bob, FaultyTransport(bob.core.transport, fail_ack=True))
    with pytest.raises(httpx.ConnectError):
        await bob.fetch()
    assert len(server.device("bob", "BOB1").queue) == 1  # not acknowledged: the server delivers it again
    assert _bodies(bob) == ["hello"]

    bob = await _restart(bob, server)
    assert _texts(await bob.fetch()) == ["hello"]  # once: the redelivery was already processed
    assert server.device("bob", "BOB1").queue == []
    assert _texts(await bob.fetch()) == []


async def test_a_failure_between_two_pages_loses_nothing(tmp_path: Path) -> None:
    server = FakeServer()
    _alice, bob = await _pair(tmp_path, server, "one", "two", "three")
    _inject(bob, FaultyTransport(bob.core.transport, pages=2))
    with pytest.raises(httpx.ConnectError):
        await bob.fetch()
    assert len(server.device("bob", "BOB1").queue) == 1

    bob = await _restart(bob, server)
    assert _texts(await bob.fetch()) == ["one", "two", "three"]


async def test_an_abandoned_client_between_decrypt_and_ack_shows_the_message_once(tmp_path: Path) -> None:
    server = FakeServer()
    _alice, bob = await _pair(tmp_path, server, "one", "two")
    # The process dies inside the ack: both messages are decrypted and stored, none acknowledged.
    _inject(bob, FaultyTransport(bob.core.transport, fail_ack=True))
    with pytest.raises(httpx.ConnectError):
        await bob.fetch()
    for _crash in range(2):
        bob = await _restart(bob, server, fail_ack=True)
        with pytest.raises(httpx.ConnectError):
            await bob.fetch()
    bob = await _restart(bob, server)
    events = await bob.fetch()
    assert _texts(events) == ["one", "two"]
    assert len({e.message_id for e in events if isinstance(e, MessageEvent)}) == 2
    assert _bodies(bob) == ["one", "two"]


async def test_listen_counts_an_event_consumed_when_the_app_asks_for_the_next(tmp_path: Path) -> None:
    server = FakeServer()
    _alice, bob = await _pair(tmp_path, server, "one", "two")
    _inject(bob, FaultyTransport(bob.core.transport))
    events = bob.listen()
    first = await anext(events)
    assert _texts([first]) == ["one"]
    assert server.device("bob", "BOB1").queue == []  # stored before the ack
    # The app crashes while handling "one": it was not consumed, so the restart hands it out again.
    bob = await _restart(bob, server)
    events = bob.listen()
    assert _texts([await anext(events)]) == ["one"]
    assert _texts([await anext(events)]) == ["two"]  # asking for "two" consumed "one"
    bob = await _restart(bob, server)
    assert _texts(await bob.fetch()) == ["two"]


async def test_a_rejected_forgery_does_not_hide_the_genuine_message(tmp_path: Path) -> None:
    server = FakeServer()
    _alice, bob = await _pair(tmp_path, server, "genuine")
    bob_device = server.device("bob", "BOB1")
    genuine = bob_device.queue[0]
    forged = "B" if genuine.commitment[0] == "A" else "A"
    bob_device.queue[0] = genuine.model_copy(update={"commitment": forged + genuine.commitment[1:]})
    [rejected] = await bob.fetch()
    assert isinstance(rejected, RejectedDelivery)
    bob_device.queue.append(genuine.model_copy(update={"delivery_id": genuine.delivery_id + 100}))
    assert _texts(await bob.fetch()) == ["genuine"]


async def test_an_event_is_kept_only_with_the_state_that_produced_it(tmp_path: Path) -> None:
    server = FakeServer()
    _alice, bob = await _pair(tmp_path, server)
    event = GroupUpdated(GroupId("g"), "name", "topic", UserId("alice"))
    entry = HistoryEntry("bob", "alice", "m1", {"payload": {"message_id": "m1"}})
    with pytest.raises(sqlite3.ProgrammingError):  # the last write fails: the event rolls back too
        bob.core.commit(
            Changes(),
            history=entry,
            processed=("alice", object()),
            event=event,  # type: ignore[arg-type]
        )
    assert bob.store.unconsumed_events() == []
    bob.core.commit(Changes(), history=entry, processed=("alice", "m1"), event=event)
    assert [event_from_record(r) for _seq, r in bob.store.unconsumed_events()] == [event]


async def test_a_store_of_the_previous_version_gains_the_inbox(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    with sqlite3.connect(path, isolation_level=None) as db:
        migrate(db, "device", DEVICE_MIGRATIONS[:1])
    store = DeviceStore(path, PASSPHRASE)
    version = store.connection.execute("SELECT version FROM schema_version WHERE component = 'device'")
    assert version.fetchone() == (len(DEVICE_MIGRATIONS),)
    store.keep_event("alice", "m1", {"type": "x"})
    store.keep_event("alice", "m1", {"type": "y"})  # the same message again: ignored
    [(seq, record)] = store.unconsumed_events()
    assert record == {"type": "x"}
    store.mark_consumed([seq])
    store.keep_event("alice", "m1", {"type": "z"})  # consumed: still never kept again
    assert store.unconsumed_events() == []


_EVERY_KIND: list[Event] = [
    MessageEvent(
        MessageId("m"),
        "bob",
        UserId("bob"),
        DeviceId("B1"),
        MessageKind.IMAGE,
        "caption",
        ReceivedAttachment(b"\x00\xffpng", "image/png", None),
        1,
        2,
        False,
    ),
    MessageEvent(
        MessageId("m2"), "group:g", UserId("bob"), DeviceId("B1"), MessageKind.TEXT, "hi", None, 1, 2, True
    ),
    RejectedDelivery(7, UserId("bob"), DeviceId("B1"), "bad commitment"),
    GroupUpdated(GroupId("g"), "name", "topic", UserId("bob")),
    KeyChangeWarning(UserId("bob"), ("B2",), (), ("B1",), True),
    SasRequested("t", UserId("bob"), DeviceId("B1")),
    SasShowCode("t", UserId("bob"), DeviceId("B1"), (SasEmoji(1, "\U0001f436", "Dog"),), (1, 2, 3)),
    SasCompleted("t", UserId("bob"), DeviceId("B1")),
    SasCancelled("t", UserId("bob"), DeviceId("B1"), SasCancelCode.MISMATCHED_SAS, "differ", True),
    ImageWithheld(MessageId("m"), "bob", UserId("bob"), DeviceId("B1"), "", "notice", None, 1, 2),
]


@pytest.mark.parametrize("event", _EVERY_KIND, ids=lambda e: type(e).__name__)
def test_every_event_survives_its_stored_record(event: Event) -> None:
    restored = event_from_record(json.loads(json.dumps(event_record(event))))
    assert restored == event and type(restored) is type(event)
    if isinstance(restored, MessageEvent):
        assert restored.kind is event.kind  # type: ignore[union-attr]


def test_an_unknown_stored_event_is_a_storage_error() -> None:
    with pytest.raises(StorageError, match="unknown type"):
        event_from_record({"type": "FromTheFuture", "fields": {}})

"""Exactly once under faults: a real server is killed with SIGKILL again and again while senders retry
(the same message id until a 202) and recipients receive over the WebSocket (`listen`), by HTTP polling
(`fetch`, its client abandoned and reopened from its store whenever a call fails, as after a crash) and
offline (it connects only at the end). Every message that got a 202 reaches each app exactly once: none
lost, none twice. On SQLite, and on PostgreSQL with two workers and Redis. Bounded in time."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import PASSPHRASE, register
from live_server import ServerProcess, create_postgres_database, drop_postgres_database, require_backend
from websockets.exceptions import WebSocketException

from vigil.client.client import Client
from vigil.client.events import Event, MessageEvent, now_ms
from vigil.errors import VigilError
from vigil.protocol.wire import MessageKind

REDIS_URL = os.environ.get("VIGIL_TEST_REDIS_URL", "")
SENDERS = 3
MESSAGES_PER_SENDER = 12
# Two workers take seconds to come back on a busy 2-core machine: fewer kills there keep the run short.
KILLS = {"sqlite": 3, "postgres": 2}
KILL_EVERY_S = 1.5
DEADLINE_S = 90.0  # a hard bound on the whole run (it takes ~25 s on SQLite, ~40 s on PostgreSQL)
# What a killed server looks like to a client: the connection fails, breaks, or answers 5xx while it comes up.
OUTAGE = (httpx.TransportError, VigilError, WebSocketException, OSError)


def _redis_reachable() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


@contextlib.contextmanager
def _server(backend: str, tmp_path: Path) -> Iterator[ServerProcess]:
    require_backend(backend)
    database = None
    if backend == "postgres":
        if not REDIS_URL or not _redis_reachable():
            pytest.skip("Redis not reachable at VIGIL_TEST_REDIS_URL")
        database, url = create_postgres_database()
        server = ServerProcess(
            data_dir=tmp_path / "data",
            database_url=url,
            env_extra={"VIGIL_REDIS_URL": REDIS_URL},
            extra_args=["--workers", "2"],
        )
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'vigil.db'}"
        server = ServerProcess(data_dir=tmp_path / "data", database_url=url)
    try:
        server.start()
        yield server
    finally:
        try:
            server.stop()
        finally:
            if database is not None:
                drop_postgres_database(database)


class Run:
    """What the senders got accepted and what each recipient's app received, by message id."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.accepted: dict[str, set[str]] = collections.defaultdict(set)  # recipient -> message ids
        self.received: dict[str, list[str]] = collections.defaultdict(list)
        self.sending = True

    def record(self, recipient: str, events: list[Event]) -> None:
        self.received[recipient] += [e.message_id for e in events if isinstance(e, MessageEvent)]

    def complete(self, recipient: str) -> bool:
        return not self.sending and self.accepted[recipient] <= set(self.received[recipient])

    def left_s(self) -> float:
        return self.deadline - time.monotonic()


async def _send_all(run: Run, sender: Client, recipients: list[str]) -> None:
    for n in range(MESSAGES_PER_SENDER):
        to = recipients[n % len(recipients)]
        payload = sender.engine.build_payload(to, MessageKind.TEXT, now_ms(), body=f"{sender.username} {n}")
        request = None
        while run.left_s() > 0:
            try:
                # Encrypted (and persisted) once; then the same request, same message id, until a 202.
                request = request or await sender.prepare(payload, [])
                await sender.transport.send(request)
            except OUTAGE:
                await asyncio.sleep(0.1)
                continue
            run.accepted[to].add(payload.message_id)
            break
        await asyncio.sleep(0.05)


async def _listen(run: Run, client: Client) -> None:
    while not run.complete(client.username) and run.left_s() > 0:
        try:
            async for event in client.listen():
                run.record(client.username, [event])
                client.consume()  # the app has it: a later crash must not show it again
                if run.complete(client.username):
                    return
        except OUTAGE:
            pass
        await asyncio.sleep(0.1)


async def _poll(run: Run, client: Client) -> Client:
    while not run.complete(client.username) and run.left_s() > 0:
        try:
            run.record(client.username, await client.fetch())
            client.consume()
        except OUTAGE:
            # As if the process died mid-call: nothing in memory survives, the store is reopened.
            await client.transport.close()
            client = await Client.open(client.store.path, PASSPHRASE)
        await asyncio.sleep(0.1)
    return client


async def _kill_repeatedly(server: ServerProcess, kills: int) -> None:
    for _kill in range(kills):
        await asyncio.sleep(KILL_EVERY_S)
        await asyncio.to_thread(server.restart)  # SIGKILL, then start on the same data


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_every_accepted_message_reaches_each_app_exactly_once_while_the_server_is_killed(
    backend: str, tmp_path: Path
) -> None:
    with _server(backend, tmp_path) as server:
        run = Run(time.monotonic() + DEADLINE_S)
        pushed = await register(server.url, tmp_path, "pushed")
        polled = await register(server.url, tmp_path, "polled")
        offline = await register(server.url, tmp_path, "offline")
        offline_path = offline.store.path
        await offline.close()
        senders = [await register(server.url, tmp_path, f"sender{n}") for n in range(SENDERS)]
        recipients = [pushed.username, polled.username, offline.username]

        async def send() -> None:
            await asyncio.gather(*(_send_all(run, s, recipients) for s in senders))
            run.sending = False

        listening = asyncio.create_task(_listen(run, pushed))
        polling = asyncio.create_task(_poll(run, polled))
        await asyncio.gather(send(), _kill_repeatedly(server, KILLS[backend]))
        await asyncio.wait_for(asyncio.gather(listening), timeout=max(run.left_s(), 1))
        polled = await asyncio.wait_for(polling, timeout=max(run.left_s(), 1))

        offline = await Client.open(offline_path, PASSPHRASE)
        while not run.complete(offline.username) and run.left_s() > 0:
            run.record(offline.username, await offline.fetch())
            offline.consume()

        for client in (pushed, polled, offline, *senders):
            await client.close()

    assert sum(len(ids) for ids in run.accepted.values()) == SENDERS * MESSAGES_PER_SENDER
    for recipient in recipients:
        counts = collections.Counter(run.received[recipient])
        assert [m for m, seen in counts.items() if seen > 1] == [], f"{recipient} was shown a message twice"
        assert run.accepted[recipient] - set(counts) == set(), f"{recipient} never got an accepted message"

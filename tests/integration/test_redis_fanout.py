"""Two server processes on one PostgreSQL database: a message accepted by one is pushed live over the
WebSocket held by the other, through Redis pub/sub."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import PASSPHRASE, register
from live_server import ServerProcess, create_postgres_database, drop_postgres_database, require_backend

from vigil.client.client import Client
from vigil.client.events import MessageEvent

REDIS_URL = os.environ.get("VIGIL_TEST_REDIS_URL", "")


def _redis_reachable() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


async def _until(condition: Callable[[], bool], timeout_s: float = 60) -> None:
    """Polls `condition` until it holds; the deadline is generous so that a busy machine does not fail."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_push_crosses_server_processes_through_redis(tmp_path: Path) -> None:
    require_backend("postgres")
    if not REDIS_URL or not _redis_reachable():
        if os.environ.get("VIGIL_REQUIRE_POSTGRES") == "1":
            pytest.fail("CI requires Redis at VIGIL_TEST_REDIS_URL")
        pytest.skip("Redis not reachable at VIGIL_TEST_REDIS_URL")
    database, url = create_postgres_database()
    env = {"VIGIL_REDIS_URL": REDIS_URL, "VIGIL_FRANKING_KEY": "ab" * 32}
    first = ServerProcess(data_dir=tmp_path / "a", database_url=url, env_extra=env)
    second = ServerProcess(data_dir=tmp_path / "b", database_url=url, env_extra=env)
    try:
        first.start()
        second.start()
        alice = await register(first.url, tmp_path, "alice")
        bob_registered = await register(first.url, tmp_path, "bob")
        path = bob_registered.store.path
        await bob_registered.close()
        bob = await Client.open(path, PASSPHRASE, server_url=second.url)
        received: list[str] = []

        async def listen() -> None:
            async for event in bob.listen():
                assert isinstance(event, MessageEvent)
                received.append(event.text)
                if len(received) == 2:
                    return

        listener = asyncio.create_task(listen())
        # Once the first message has arrived over bob's socket, the socket is subscribed: the second
        # one can only reach it as a push through Redis.
        await alice.send_text(bob.username, "socket is up")
        await _until(lambda: len(received) == 1 or listener.done())
        await alice.send_text(bob.username, "across processes")
        await asyncio.wait_for(listener, timeout=60)
        assert received == ["socket is up", "across processes"]
    finally:
        first.stop()
        second.stop()
        drop_postgres_database(database)


async def test_two_worker_processes_behind_one_port(tmp_path: Path) -> None:
    require_backend("postgres")
    if not REDIS_URL or not _redis_reachable():
        pytest.skip("Redis not reachable at VIGIL_TEST_REDIS_URL")
    database, url = create_postgres_database()
    server = ServerProcess(
        data_dir=tmp_path / "w",
        database_url=url,
        env_extra={"VIGIL_REDIS_URL": REDIS_URL},
        extra_args=["--workers", "2"],
    )
    try:
        server.start()
        alice = await register(server.url, tmp_path, "alice")
        bob = await register(server.url, tmp_path, "bob")
        received: list[str] = []

        async def listen() -> None:
            async for event in bob.listen():
                assert isinstance(event, MessageEvent)
                received.append(event.text)
                if len(received) == 6:
                    return

        listener = asyncio.create_task(listen())
        await alice.send_text(bob.username, "socket is up")  # as above: what follows is pushed
        await _until(lambda: len(received) == 1 or listener.done())
        for n in range(5):  # each send may land on either worker; every push must still arrive
            await alice.send_text(bob.username, f"worker test {n}")
        await asyncio.wait_for(listener, timeout=60)
        assert received == ["socket is up", *(f"worker test {n}" for n in range(5))]
    finally:
        server.stop()
        drop_postgres_database(database)


def test_several_workers_without_redis_are_refused(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "vigil", "serve", "--workers", "2", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "VIGIL_REDIS_URL"},
    )
    assert result.returncode != 0 and "VIGIL_REDIS_URL" in result.stderr

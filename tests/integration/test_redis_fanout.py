"""Two server processes on one PostgreSQL database: a message accepted by one is pushed live over the
WebSocket held by the other, through Redis pub/sub."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from live_server import ServerProcess, drop_postgres_database, create_postgres_database, require_backend
from helpers import PASSPHRASE, register

from vigil.client.client import Client, MessageEvent

REDIS_URL = os.environ.get("VIGIL_TEST_REDIS_URL", "")


def _redis_reachable() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


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
    first.start()
    second.start()
    try:
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
                return

        listener = asyncio.create_task(listen())
        await asyncio.sleep(0.5)  # let the socket subscribe before the send
        await alice.send_text(bob.username, "across processes")
        await asyncio.wait_for(listener, timeout=10)
        assert received == ["across processes"]
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
    server.start()
    try:
        alice = await register(server.url, tmp_path, "alice")
        bob = await register(server.url, tmp_path, "bob")
        received: list[str] = []

        async def listen() -> None:
            async for event in bob.listen():
                assert isinstance(event, MessageEvent)
                received.append(event.text)
                if len(received) == 5:
                    return

        listener = asyncio.create_task(listen())
        await asyncio.sleep(0.5)
        for n in range(5):  # each send may land on either worker; every push must still arrive
            await alice.send_text(bob.username, f"worker test {n}")
        await asyncio.wait_for(listener, timeout=15)
        assert received == [f"worker test {n}" for n in range(5)]
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
        timeout=30,
        env={k: v for k, v in os.environ.items() if k != "VIGIL_REDIS_URL"},
    )
    assert result.returncode != 0 and "VIGIL_REDIS_URL" in result.stderr

"""Outages degrade, then recover by themselves: a lost database answers 503 with Retry-After (not 500)
and `/v1/ready` says so while `/v1/health` stays cheap and 200; a Redis restart does not stop pushes
or fail sends, and the server starts while Redis is down."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from helpers import register
from live_server import (
    ServerProcess,
    create_postgres_database,
    drop_postgres_database,
    postgres_admin_url,
    require_backend,
)
from private_redis import PrivateRedis, private_redis_fixture  # noqa: F401 - the fixture

# Every push is expected to arrive: the deadline only bounds a failure, so it is generous enough for a
# busy machine and costs nothing when the push comes at once.
PUSH_DEADLINE_S = 60.0


def _admin(statement: str) -> None:
    import psycopg2

    connection = psycopg2.connect(postgres_admin_url())
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(statement)
    connection.close()


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, (response.status_code, response.text)
    assert int(response.headers["Retry-After"]) > 0
    assert response.json()["error"] in ("unavailable", "not_ready")


async def test_lost_database_answers_503_then_recovers(tmp_path: Path) -> None:
    require_backend("postgres")
    name, url = create_postgres_database()
    server = ServerProcess(data_dir=tmp_path / "server", database_url=url)
    hidden = f"{name}_away"
    try:
        server.start()
        alice = await register(server.url, tmp_path, "alice")
        bob = await register(server.url, tmp_path, "bob")
        await alice.send_text(bob.username, "before the outage")
        auth = {"Authorization": f"Bearer {alice.store.get_secret('credential')}"}
        async with httpx.AsyncClient(base_url=server.url, headers=auth, timeout=30) as http:
            ready = (await http.get("/v1/ready")).json()
            assert ready == {"status": "ready", "database": "ok", "redis": "not_configured"}

            # The database goes away: connections dropped, and it cannot be found under its name.
            _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            _admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
            _admin(f'ALTER DATABASE "{name}" RENAME TO "{hidden}"')
            for _ in range(3):
                _assert_unavailable(await http.get("/v1/messages"))
            _assert_unavailable(await http.get("/v1/keys/count"))
            ready = await http.get("/v1/ready")
            _assert_unavailable(ready)
            assert ready.json()["detail"] == {"database": "unreachable", "redis": "not_configured"}
            assert (await http.get("/v1/health")).status_code == 200

            # It comes back: the server recovers without a restart.
            _admin(f'ALTER DATABASE "{hidden}" RENAME TO "{name}"')
            _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            assert (await http.get("/v1/ready")).status_code == 200
            assert (await http.get("/v1/messages")).status_code == 200
        await alice.send_text(bob.username, "after the outage")
        assert [e.text for e in await bob.fetch()] == ["before the outage", "after the outage"]  # type: ignore[union-attr]
        await alice.close()
        await bob.close()
    finally:
        server.stop()
        _admin(f'DROP DATABASE IF EXISTS "{hidden}" WITH (FORCE)')
        drop_postgres_database(name)
    log = server.log_path.read_text()
    assert " 500 " not in log and "Traceback" not in log


async def test_redis_restart_keeps_sends_and_local_pushes_and_cross_worker_push_resumes(
    tmp_path: Path, private_redis: PrivateRedis
) -> None:
    import asyncio
    import json

    import websockets

    require_backend("postgres")
    database, url = create_postgres_database()
    env = {"VIGIL_REDIS_URL": private_redis.url, "VIGIL_FRANKING_KEY": "ab" * 32}
    first = ServerProcess(data_dir=tmp_path / "a", database_url=url, env_extra=env)
    second = ServerProcess(data_dir=tmp_path / "b", database_url=url, env_extra=env)
    third = ServerProcess(data_dir=tmp_path / "c", database_url=url, env_extra=env)
    try:
        first.start()
        second.start()
        alice = await register(first.url, tmp_path, "alice")  # sends through the first worker
        carol = await register(second.url, tmp_path, "carol")  # sends through the second worker
        bob = await register(second.url, tmp_path, "bob")
        socket_url = second.url.replace("http", "ws") + "/v1/stream"
        auth = {"Authorization": f"Bearer {bob.store.get_secret('credential')}"}
        async with websockets.connect(socket_url, additional_headers=auth) as socket:

            async def pushed(message_id: str, within_s: float = PUSH_DEADLINE_S) -> bool:
                """Whether the socket (on the second worker) gets this message within the time."""
                deadline = asyncio.get_running_loop().time() + within_s
                while (left := deadline - asyncio.get_running_loop().time()) > 0:
                    try:
                        frame = json.loads(await asyncio.wait_for(socket.recv(), left))
                    except TimeoutError:
                        return False
                    if any(m["message_id"] == message_id for m in frame.get("messages", [])):
                        return True
                return False

            await asyncio.sleep(0.3)  # the socket subscribes
            assert await pushed((await alice.send_text(bob.username, "across")).message_id)

            # Redis goes down: sends are still accepted (202), and a socket on the worker that stored
            # the message still gets its push.
            private_redis.stop()
            await asyncio.sleep(0.3)
            assert await pushed((await carol.send_text(bob.username, "local")).message_id)
            # Stored on the first worker: its wake-up cannot reach the second one until Redis is back.
            during = await alice.send_text(bob.username, "stored while Redis is down")
            assert during.devices == 1

            # A worker starts while Redis is down.
            third.start()
            async with httpx.AsyncClient() as http:
                assert (await http.get(f"{third.url}/v1/health")).status_code == 200
                ready = await http.get(f"{third.url}/v1/ready")
                assert ready.status_code == 503 and ready.json()["detail"]["redis"] == "unreachable"

                # Redis comes back: every worker listens again by itself.
                private_redis.start()
                deadline = time.monotonic() + 120
                for worker in (first, second, third):
                    while (await http.get(f"{worker.url}/v1/ready")).status_code != 200:
                        assert time.monotonic() < deadline, "a worker did not reconnect to Redis"
                        await asyncio.sleep(0.1)
            # What was stored elsewhere during the outage is pushed once the listener is back...
            assert await pushed(during.message_id)
            # ...and cross-worker pushes work again.
            assert await pushed((await alice.send_text(bob.username, "across again")).message_id)
        for client in (alice, bob, carol):
            await client.close()
    finally:
        for worker in (first, second, third):
            worker.stop()
        drop_postgres_database(database)
    for worker in (first, second, third):
        log = worker.log_path.read_text()
        assert " 500 " not in log and "Traceback" not in log, log[-3000:]

"""Workers answer authentication from an in-process cache (`vigil.server.authcache`); a suspension
must still be refused at once: from another process on the same data directory (the marker file), and
on every worker of a two-worker server when it is made by a process that shares only the database and
Redis."""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path

import httpx
import pytest
import websockets
from helpers import register
from live_server import ServerProcess, create_postgres_database, drop_postgres_database, require_backend
from safety_helpers import server_context

from vigil.client.client import Client
from vigil.protocol.reports import ReportReason
from vigil.server.offline import offline_context
from vigil.server.services import cases, policies
from vigil.server.services.cases import CaseAction
from vigil.server.settings import Settings

REDIS_URL = os.environ.get("VIGIL_TEST_REDIS_URL", "")
REQUESTS = 12  # fresh connections each: with two workers, both see some of them


async def _case_against(url: str, tmp_path: Path) -> tuple[Client, int]:
    """An account with a case open against it (its victim reported it)."""
    mallory = await register(url, tmp_path, "mallory")
    bob = await register(url, tmp_path, "bob")
    await mallory.send_text(bob.username, "hello")
    [event] = await bob.fetch()
    accepted = await bob.report(event, ReportReason.HARASSMENT)
    await bob.close()
    return mallory, accepted.case_id


async def _statuses(url: str, credential: str) -> list[int]:
    """GET /v1/messages REQUESTS times, each on a new connection."""
    statuses = []
    for _ in range(REQUESTS):
        async with httpx.AsyncClient() as http:
            response = await http.get(f"{url}/v1/messages", headers={"Authorization": f"Bearer {credential}"})
            statuses.append(response.status_code)
    return statuses


async def _socket_refused(url: str, credential: str) -> bool:
    """Whether the WebSocket is refused: not upgraded at all, or closed with the policy code."""
    try:
        async with websockets.connect(
            url.replace("http", "ws") + "/v1/stream",
            additional_headers={"Authorization": f"Bearer {credential}"},
        ) as socket:
            await asyncio.wait_for(socket.recv(), 3)
    except websockets.InvalidStatus:
        return True
    except websockets.ConnectionClosed as closed:
        return closed.rcvd is not None and closed.rcvd.code == 4401
    except TimeoutError:
        return False
    return False


async def test_a_suspension_from_another_process_is_refused_at_once(
    server: ServerProcess, tmp_path: Path
) -> None:
    mallory, case_id = await _case_against(server.url, tmp_path)
    credential = mallory.store.get_secret("credential")
    assert await _statuses(server.url, credential) == [200] * REQUESTS  # cached now
    async with server_context(server.data_dir, server.database_url) as ctx:
        policy = await policies.add_policy(ctx, "reviewer:t", f"SP-{secrets.token_hex(3)}", "Spam")
        await cases.apply_action(ctx, "reviewer:t", None, case_id, CaseAction.SUSPEND, policy_id=policy.id)
    assert await _statuses(server.url, credential) == [403] * REQUESTS
    assert await _socket_refused(server.url, credential)
    async with server_context(server.data_dir, server.database_url) as ctx:
        await cases.apply_action(ctx, "reviewer:t", None, case_id, CaseAction.LIFT)
    assert await _statuses(server.url, credential) == [200] * REQUESTS  # refusals are never cached
    await mallory.close()


async def test_a_suspension_reaches_both_workers_through_redis(tmp_path: Path) -> None:
    require_backend("postgres")
    if not REDIS_URL:
        if os.environ.get("VIGIL_REQUIRE_POSTGRES") == "1":
            pytest.fail("CI requires Redis at VIGIL_TEST_REDIS_URL")
        pytest.skip("no Redis at VIGIL_TEST_REDIS_URL")
    database, url = create_postgres_database()
    server = ServerProcess(
        data_dir=tmp_path / "node",
        database_url=url,
        env_extra={"VIGIL_REDIS_URL": REDIS_URL, "VIGIL_AUTH_CACHE_SECONDS": "600"},
        extra_args=["--workers", "2"],
    )
    try:
        server.start()
        mallory, case_id = await _case_against(server.url, tmp_path)
        credential = mallory.store.get_secret("credential")
        assert await _statuses(server.url, credential) == [200] * REQUESTS
        # A console elsewhere: its own data directory (no shared marker file), the same database and Redis.
        console = Settings(data_dir=tmp_path / "console", database_url=url, redis_url=REDIS_URL)
        async with offline_context(console) as ctx:
            policy = await policies.add_policy(ctx, "reviewer:t", f"SP-{secrets.token_hex(3)}", "Spam")
        await cases.apply_action(ctx, "reviewer:t", None, case_id, CaseAction.SUSPEND, policy_id=policy.id)
        assert await _statuses(server.url, credential) == [403] * REQUESTS
        assert await _socket_refused(server.url, credential)
        await mallory.close()
    finally:
        server.stop()
        drop_postgres_database(database)

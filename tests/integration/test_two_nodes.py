"""Two `vigil serve` nodes with separate data directories, sharing PostgreSQL, Redis and a blob backend
(chunked rows in PostgreSQL, or an S3 bucket on a real local S3-speaking server): a message and an
attachment sent through one node reach a device connected to the other, live over its WebSocket, and the
blob is gone from the shared store once fetched."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import PASSPHRASE, register
from live_server import ServerProcess, create_postgres_database, drop_postgres_database, require_backend
from s3_server import S3_ACCESS_KEY, S3_SECRET_KEY, create_bucket, s3_server

from vigil.client.client import Client
from vigil.client.events import MessageEvent

REDIS_URL = os.environ.get("VIGIL_TEST_REDIS_URL", "")


def _require_redis() -> None:
    import redis

    try:
        reachable = bool(REDIS_URL) and bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except redis.RedisError:
        reachable = False
    if not reachable:
        if os.environ.get("VIGIL_REQUIRE_POSTGRES") == "1":
            pytest.fail("CI requires Redis at VIGIL_TEST_REDIS_URL")
        pytest.skip("Redis not reachable at VIGIL_TEST_REDIS_URL")


@pytest.fixture
def blob_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    if request.param == "postgres":
        yield {"VIGIL_BLOB_BACKEND": "postgres"}
        return
    with s3_server(tmp_path / "moto") as endpoint:
        yield {
            "VIGIL_BLOB_BACKEND": "s3",
            "VIGIL_S3_ENDPOINT": endpoint,
            "VIGIL_S3_BUCKET": create_bucket(endpoint),
            "VIGIL_S3_ACCESS_KEY_ID": S3_ACCESS_KEY,
            "VIGIL_S3_SECRET_ACCESS_KEY": S3_SECRET_KEY,
        }


def _stored_blob_count(env: dict[str, str], database_url: str) -> int:
    if env["VIGIL_BLOB_BACKEND"] == "s3":
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=env["VIGIL_S3_ENDPOINT"],
            aws_access_key_id=S3_ACCESS_KEY,
            aws_secret_access_key=S3_SECRET_KEY,
            region_name="us-east-1",
        )
        return int(client.list_objects_v2(Bucket=env["VIGIL_S3_BUCKET"]).get("KeyCount", 0))
    import psycopg2

    connection = psycopg2.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(DISTINCT blob_id) FROM blob_chunks")
            row = cursor.fetchone()
            assert row is not None
            return int(row[0])
    finally:
        connection.close()


@pytest.mark.parametrize("blob_env", ["postgres", "s3"], indirect=True)
async def test_message_and_attachment_cross_nodes(tmp_path: Path, blob_env: dict[str, str]) -> None:
    require_backend("postgres")
    _require_redis()
    database, url = create_postgres_database()
    env = {"VIGIL_REDIS_URL": REDIS_URL, "VIGIL_FRANKING_KEY": "ab" * 32, "VIGIL_REPORT_KEY": "cd" * 32}
    env["VIGIL_NOTICE_SIGNING_KEY"] = "ef" * 32  # every node signs and seals with the same keys
    env |= blob_env
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
        received: list[MessageEvent] = []

        async def listen() -> None:
            async for event in bob.listen():
                assert isinstance(event, MessageEvent)
                received.append(event)
                if len(received) == 2:
                    return

        listener = asyncio.create_task(listen())
        document = secrets.token_bytes(700_000)  # several database chunks
        await alice.send_text(bob.username, "through node a")
        await alice.send_attachment(bob.username, document, "application/pdf", name="doc.pdf")
        assert _stored_blob_count(blob_env, url) == 1
        await asyncio.wait_for(listener, timeout=90)
        assert received[0].text == "through node a"
        attachment = received[1].attachment
        assert attachment is not None and attachment.data == document and attachment.name == "doc.pdf"
        # bob fetched it through node b: the shared store has deleted it, and no node kept a local copy.
        assert _stored_blob_count(blob_env, url) == 0
        for node in (first, second):
            assert [p for p in (node.data_dir / "blobs").rglob("*") if p.is_file()] == []
        await alice.close()
        await bob.close()
    finally:
        first.stop()
        second.stop()
        drop_postgres_database(database)

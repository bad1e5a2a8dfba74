"""Every endpoint answers bad input with a 4xx and a JSON `{"error", "detail"}` body, never a 500, and
the server keeps working afterwards. The HTTP checks run against the app in-process; the WebSocket
checks need a real server."""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
import websockets.exceptions
from helpers import ADULT, register, unique
from in_process import InProcessServer, in_process_server
from live_server import ServerProcess, create_postgres_database, drop_postgres_database

from vigil.protocol.encoding import b64encode
from vigil.protocol.olm import DeviceAccount
from vigil.server.settings import Settings


@pytest.fixture
async def small_blob_server(backend: str, tmp_path: Path) -> AsyncIterator[InProcessServer]:
    """The app in-process (these tests only look at requests and answers), with a small blob limit."""
    database: str | None = None
    if backend == "postgres":
        database, url = create_postgres_database()
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'server' / 'vigil.db'}"
    try:
        settings = Settings(data_dir=tmp_path / "server", database_url=url, max_blob_bytes=4096)
        async with in_process_server(settings) as server:
            yield server
    finally:
        if database is not None:
            drop_postgres_database(database)


def _registration(username: str, **overrides: Any) -> dict[str, Any]:
    body = {
        "username": username,
        "birth_date": ADULT.isoformat(),
        "device": DeviceAccount().device_keys().model_dump(),
    }
    body.update(overrides)
    return body


def _expect(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert body["error"] == code, body
    assert "detail" in body


async def test_every_endpoint_rejects_bad_input_cleanly(
    small_blob_server: InProcessServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = small_blob_server
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    alice_auth = {"Authorization": f"Bearer {alice.store.get_secret('credential')}"}
    bob_secret = (bob.store.get_secret("credential") or "").split(".", 1)[1]
    await alice.send_text(bob.username, "warm up sessions")
    bob_blob = (await bob.transport.upload_blob(b"x" * 100)).blob_id

    async with httpx.AsyncClient(base_url=server.url) as http:
        post = http.post
        json_headers = {"Content-Type": "application/json"}

        # accounts
        _expect(await post("/v1/accounts", content=b"{not json", headers=json_headers), 400, "malformed_json")
        _expect(await post("/v1/accounts", json=_registration(unique("x"), extra=1)), 422, "invalid_request")
        _expect(await post("/v1/accounts", json=_registration("Bad Name!")), 422, "invalid_request")
        _expect(
            await post("/v1/accounts", json=_registration(unique("x"), birth_date="1990-13-45")),
            422,
            "invalid_request",
        )
        forged = _registration(unique("x"))
        forged["device"]["curve25519"] = DeviceAccount().curve25519
        _expect(await post("/v1/accounts", json=forged), 400, "tampered")
        young = (dt.date.today() - dt.timedelta(days=365 * 10)).isoformat()
        _expect(
            await post("/v1/accounts", json=_registration(unique("kid"), birth_date=young)),
            403,
            "policy_violation",
        )
        _expect(await post("/v1/accounts", json=_registration(alice.username)), 409, "conflict")
        _expect(
            await post("/v1/accounts", content=b"x" * (5 * 1024 * 1024), headers=json_headers),
            413,
            "too_large",
        )

        # authentication, including claiming to be another device
        _expect(await post("/v1/keys", json={}), 401, "unauthenticated")
        _expect(
            await post("/v1/keys", json={}, headers={"Authorization": "Basic abc"}), 401, "unauthenticated"
        )
        impersonation = {"Authorization": f"Bearer {alice.device_id}.{bob_secret}"}
        _expect(await post("/v1/messages", json={}, headers=impersonation), 401, "unauthenticated")
        _expect(
            await post("/v1/devices", json={"device": DeviceAccount().device_keys().model_dump()}),
            401,
            "unauthenticated",
        )

        # keys
        other = DeviceAccount()
        foreign_key = other.new_one_time_keys(1)[0].model_dump()
        _expect(
            await post("/v1/keys", json={"one_time_keys": [foreign_key]}, headers=alice_auth), 400, "tampered"
        )
        too_many = [foreign_key] * 101
        _expect(
            await post("/v1/keys", json={"one_time_keys": too_many}, headers=alice_auth),
            422,
            "invalid_request",
        )
        _expect(
            await post("/v1/keys/claim", json={"username": unique("nobody")}, headers=alice_auth),
            404,
            "not_found",
        )
        _expect(await http.get("/v1/users/NOT VALID/devices", headers=alice_auth), 422, "invalid_request")

        # messages
        good = {
            "id": str(uuid.uuid4()),
            "to": bob.username,
            "kind": "text",
            "commitment": b64encode(b"c" * 32),
            "ciphertexts": [{"device_id": bob.device_id, "type": 1, "body": b64encode(b"opaque" * 10)}],
        }
        for broken in (
            {**good, "ciphertexts": [{**good["ciphertexts"][0], "body": "@@not base64@@"}]},
            {**good, "id": "not-a-uuid"},
            {**good, "commitment": b64encode(b"short")},
            {**good, "kind": "video-call"},
            {**good, "ciphertexts": []},
            {**good, "surprise": True},
        ):
            _expect(await post("/v1/messages", json=broken, headers=alice_auth), 422, "invalid_request")
        _expect(
            await post("/v1/messages", json={**good, "to": unique("ghost")}, headers=alice_auth),
            404,
            "not_found",
        )
        doubled = {**good, "ciphertexts": good["ciphertexts"] * 2}
        _expect(await post("/v1/messages", json=doubled, headers=alice_auth), 400, "invalid_request")
        stale = await post(
            "/v1/messages",
            json={**good, "ciphertexts": [{**good["ciphertexts"][0], "device_id": "nope"}]},
            headers=alice_auth,
        )
        assert stale.status_code == 409 and stale.json()["error"] == "stale_devices"
        assert stale.json()["missing"] == {bob.username: [bob.device_id]}
        stolen_blob = {**good, "attachments": [bob_blob]}
        _expect(await post("/v1/messages", json=stolen_blob, headers=alice_auth), 400, "invalid_request")
        _expect(
            await http.get("/v1/messages", params={"limit": 0}, headers=alice_auth), 422, "invalid_request"
        )
        _expect(
            await post("/v1/messages/ack", json={"delivery_ids": []}, headers=alice_auth),
            422,
            "invalid_request",
        )
        _expect(
            await post("/v1/messages/ack", json={"delivery_ids": ["x"]}, headers=alice_auth),
            422,
            "invalid_request",
        )
        # acking bob's entries as alice deletes nothing
        pending = (await bob.transport.fetch()).messages
        other_ack = await post(
            "/v1/messages/ack", json={"delivery_ids": [pending[0].delivery_id]}, headers=alice_auth
        )
        assert other_ack.json() == {"deleted": 0}
        assert len((await bob.transport.fetch()).messages) == 1

        # blobs
        octets = {**alice_auth, "Content-Type": "application/octet-stream"}
        _expect(
            await post("/v1/blobs", content=b"x", headers={**alice_auth, "Content-Type": "text/plain"}),
            400,
            "invalid_request",
        )
        _expect(await post("/v1/blobs", content=b"", headers=octets), 400, "invalid_request")
        _expect(await post("/v1/blobs", content=b"x" * 5000, headers=octets), 413, "too_large")
        _expect(await http.get(f"/v1/blobs/{bob_blob}", headers=alice_auth), 403, "forbidden")
        _expect(await http.get("/v1/blobs/not-an-id", headers=alice_auth), 422, "invalid_request")
        _expect(await http.get(f"/v1/blobs/{'0' * 32}", headers=alice_auth), 404, "not_found")

        # routing
        _expect(await http.get("/v1/nowhere"), 404, "not_found")
        _expect(await http.delete("/v1/accounts"), 405, "method_not_allowed")

    # and the server still works, having logged no error
    await alice.send_text(bob.username, "still alive")
    assert [e.text for e in await bob.fetch()][-1] == "still alive"  # type: ignore[union-attr]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info], caplog.text


async def test_stream_rejects_bad_credentials_and_malformed_frames(
    server: ServerProcess, tmp_path: Path
) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    alice_auth = {"Authorization": f"Bearer {alice.store.get_secret('credential')}"}
    # WebSocket: no credential, wrong credential, then a malformed frame on a good connection
    url = server.url.replace("http", "ws") + "/v1/stream"
    for headers in ({}, {"Authorization": "Bearer nope.nope"}):
        with pytest.raises(websockets.exceptions.InvalidStatus):
            async with websockets.connect(url, additional_headers=headers) as socket:
                await socket.recv()
    async with websockets.connect(url, additional_headers=alice_auth) as socket:
        await socket.send("{broken")
        reply = json.loads(await socket.recv())
        assert reply["type"] == "error" and reply["error"] == "invalid_request"

    # and the server still works
    await alice.send_text(bob.username, "still alive")
    assert [e.text for e in await bob.fetch()][-1] == "still alive"  # type: ignore[union-attr]
    server.stop()
    log = server.log_path.read_text()
    assert " 500 " not in log and "Traceback" not in log

"""`POST /v1/messages` is served before the app's middleware stack (`messages.serve_send`, issue 12):
what that stack gave the route still holds there: the access log's line with the route template, the
body size limit, the error handlers' answers and headers, and the same 202 as the router's route."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import ADULT, unique

from vigil.protocol.encoding import b64encode
from vigil.protocol.olm import DeviceAccount
from vigil.server.access_log import AccessLog
from vigil.server.app import create_app
from vigil.server.settings import Settings

MAX_JSON_BYTES = 64 * 1024


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(data_dir=tmp_path, max_json_bytes=MAX_JSON_BYTES))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://vigil") as client:
            yield client


async def _register(http: httpx.AsyncClient) -> tuple[str, str, dict[str, str]]:
    keys = DeviceAccount().device_keys().model_dump()
    name = unique("u")
    response = await http.post(
        "/v1/accounts", json={"username": name, "birth_date": ADULT.isoformat(), "device": keys}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return name, body["device_id"], {"Authorization": f"Bearer {body['credential']}"}


def _send(to: str, device_id: str, body: str = "b3BhcXVl") -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "to": to,
        "kind": "text",
        "commitment": b64encode(b"c" * 32),
        "ciphertexts": [{"device_id": device_id, "type": 1, "body": body}],
    }


def _access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "vigil.access"]


async def test_the_lean_send_route_logs_limits_and_answers_like_the_app(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    _, _, alice = await _register(http)
    bob, bob_device, _ = await _register(http)
    with caplog.at_level(logging.INFO, logger="vigil.access"):
        sent = _send(bob, bob_device)
        accepted = await http.post("/v1/messages", json=sent, headers=alice)
        again = await http.post("/v1/messages", json=sent, headers=alice)
        anonymous = await http.post("/v1/messages", json=sent)
        too_large = await http.post(
            "/v1/messages", json=_send(bob, bob_device, "A" * MAX_JSON_BYTES), headers=alice
        )
        unknown = await http.post("/v1/messages", json=_send(unique("ghost"), bob_device), headers=alice)
        stale = await http.post("/v1/messages", json=_send(bob, "not-a-device"), headers=alice)

    assert accepted.status_code == 202 and accepted.headers["content-type"] == "application/json"
    assert accepted.json()["message_id"] == sent["id"] and accepted.json()["duplicate"] is False
    assert again.status_code == 202 and again.json()["duplicate"] is True
    assert again.json()["franking_tag"] == accepted.json()["franking_tag"]
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    assert anonymous.json()["error"] == "unauthenticated"
    assert too_large.status_code == 413 and too_large.json()["error"] == "too_large"
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
    assert stale.status_code == 409 and stale.json()["missing"] == {bob: [bob_device]}
    assert _access_lines(caplog) == [
        "POST /v1/messages 202 Accepted",
        "POST /v1/messages 202 Accepted",
        "POST /v1/messages 401 Unauthorized",
        # refused by its Content-Length before any route was matched, as on every other route
        "POST <unmatched> 413 Request Entity Too Large",
        "POST /v1/messages 404 Not Found",
        "POST /v1/messages 409 Conflict",
    ]
    assert bob not in "\n".join(_access_lines(caplog))


async def test_the_other_routes_under_the_send_path_still_go_through_the_router(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    _, _, alice = await _register(http)
    with caplog.at_level(logging.INFO, logger="vigil.access"):
        fetched = await http.get("/v1/messages", headers=alice)
        wrong_method = await http.put("/v1/messages", json={}, headers=alice)
    assert fetched.status_code == 200 and fetched.json()["messages"] == []
    assert wrong_method.status_code == 405 and wrong_method.json()["error"] == "method_not_allowed"
    assert _access_lines(caplog)[:1] == ["GET /v1/messages 200 OK"]


async def test_the_send_route_is_wrapped_in_the_apps_own_middleware_list(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A middleware taken out of the app's list (as benchmarks/access_log.py takes out the access log)
    # is gone from the send route too, as from every other route: one list for both.
    app = create_app(Settings(data_dir=tmp_path))
    app.user_middleware = [m for m in app.user_middleware if m.cls is not AccessLog]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://vigil") as http:
            _, _, alice = await _register(http)
            bob, bob_device, _ = await _register(http)
            with caplog.at_level(logging.INFO, logger="vigil.access"):
                accepted = await http.post("/v1/messages", json=_send(bob, bob_device), headers=alice)
                fetched = await http.get("/v1/messages", headers=alice)
    assert accepted.status_code == 202 and fetched.status_code == 200
    assert _access_lines(caplog) == []


async def test_the_router_route_answers_as_the_lean_one(tmp_path: Path) -> None:
    # Under a root path (a mounted app) `is_send` declines and the request goes through Starlette's
    # stack to the router's route (`_serve_send`): the same answers, statuses, codes and headers.
    app = create_app(Settings(data_dir=tmp_path, max_json_bytes=MAX_JSON_BYTES))

    async def answers(client: httpx.AsyncClient) -> list[tuple[int, str | None, str | None, bool]]:
        _, _, alice = await _register(client)
        bob, bob_device, _ = await _register(client)
        sent = _send(bob, bob_device)
        responses = [
            await client.post("/v1/messages", json=sent, headers=alice),
            await client.post("/v1/messages", json=sent, headers=alice),
            await client.post("/v1/messages", json=sent),
            await client.post("/v1/messages", content=b"{", headers=alice),
            await client.post("/v1/messages", json={"id": sent["id"]}, headers=alice),
            await client.post("/v1/messages", json=_send(unique("ghost"), bob_device), headers=alice),
            await client.post("/v1/messages", json=_send(bob, "not-a-device"), headers=alice),
        ]
        return [
            (
                r.status_code,
                r.json().get("error"),
                r.headers.get("www-authenticate"),
                r.json().get("duplicate", False),
            )
            for r in responses
        ]

    async with app.router.lifespan_context(app):
        results = []
        for root_path in ("", "/relay"):
            transport = httpx.ASGITransport(app=app, root_path=root_path)
            async with httpx.AsyncClient(transport=transport, base_url="http://vigil") as client:
                results.append(await answers(client))
    lean, routed = results
    assert [status for status, *_ in lean] == [202, 202, 401, 400, 422, 404, 409]
    assert routed == lean

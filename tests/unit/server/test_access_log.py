"""The access log writes route templates and statuses: never the path's identifiers, the query string
or the client's address; a mounted app's routes keep their mount prefix; unmatched paths are not echoed."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI

from vigil.server.access_log import AccessLog, DropClientAddressLines


def _app() -> FastAPI:
    inner = FastAPI()

    @inner.get("/cases/{case_id}")
    async def case(case_id: int) -> dict[str, int]:
        return {"case": case_id}

    app = FastAPI()

    @app.get("/v1/users/{username}/photo")
    async def photo(username: str) -> dict[str, str]:
        return {"user": username}

    app.mount("/console", inner)
    app.add_middleware(AccessLog)
    return app


async def test_lines_carry_templates_not_identifiers(caplog: pytest.LogCaptureFixture) -> None:
    transport = httpx.ASGITransport(app=_app(), client=("203.0.113.9", 40000))
    with caplog.at_level(logging.INFO, logger="vigil.access"):
        async with httpx.AsyncClient(transport=transport, base_url="http://vigil") as http:
            await http.get("/v1/users/alice_secret/photo?token=abc")
            await http.get("/console/cases/4242")
            await http.get("/v1/users/alice_secret/unknown")
    lines = [r.getMessage() for r in caplog.records if r.name == "vigil.access"]
    assert lines == [
        "GET /v1/users/{username}/photo 200 OK",
        "GET /console/cases/{case_id} 200 OK",
        "GET <unmatched> 404 Not Found",
    ]
    text = "\n".join(lines)
    assert (
        "alice_secret" not in text and "4242" not in text and "203.0.113.9" not in text and "abc" not in text
    )


def test_uvicorns_websocket_lines_with_client_addresses_are_dropped() -> None:
    drop = DropClientAddressLines()
    ws = logging.LogRecord(
        "uvicorn.error", logging.INFO, "", 0, '%s - "WebSocket %s" [accepted]', ("a", "b"), None
    )
    other = logging.LogRecord("uvicorn.error", logging.INFO, "", 0, "connection open", (), None)
    assert not drop.filter(ws)
    assert drop.filter(other)

"""Integers beyond 64 bits are refused at the API edge with a 422 naming the field (they used to reach
the database and answer 500), and the largest accepted value works."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from helpers import register
from live_server import ServerProcess

from vigil.protocol.encoding import b64encode
from vigil.protocol.wire import MAX_WIRE_INT


def _field_error(response: httpx.Response, *loc: str) -> None:
    assert response.status_code == 422, (response.status_code, response.text)
    body = response.json()
    assert body["error"] == "invalid_request"
    assert [list(loc)] == [item["loc"][: len(loc)] for item in body["detail"]], body


@pytest.mark.fresh_server  # stops the server to read its whole log
async def test_integers_beyond_64_bits_are_refused_naming_the_field(
    server: ServerProcess, tmp_path: Path
) -> None:
    alice = await register(server.url, tmp_path, "alice")
    auth = {"Authorization": f"Bearer {alice.store.get_secret('credential')}"}
    report_item = {"payload": {}, "commitment": b64encode(b"c" * 32), "server_ts_ms": 2**63}
    async with httpx.AsyncClient(base_url=server.url, headers=auth) as http:
        for huge in (2**63, 2**64, 10**30):
            _field_error(await http.get("/v1/messages", params={"after": huge}), "query", "after")
            _field_error(await http.get("/v1/notices", params={"after": huge}), "query", "after")
            _field_error(await http.get("/v1/safety/notices", params={"after": huge}), "query", "after")
            _field_error(await http.get("/v1/hashlist/manifests", params={"since": huge}), "query", "since")
            ack = await http.post("/v1/messages/ack", json={"delivery_ids": [huge]})
            _field_error(ack, "body", "delivery_ids")
            _field_error(await http.post(f"/v1/contacts/requests/{huge}/accept"), "path", "request_id")
        report = {"reason": "spam", "messages": [report_item]}
        _field_error(await http.post("/v1/reports", json=report), "body", "messages")

        # The largest accepted value is answered normally.
        assert (await http.get("/v1/messages", params={"after": MAX_WIRE_INT})).json()["messages"] == []
        ack = await http.post("/v1/messages/ack", json={"delivery_ids": [MAX_WIRE_INT]})
        assert ack.json() == {"deleted": 0}
    await alice.close()
    server.stop()
    assert " 500 " not in server.log_path.read_text()

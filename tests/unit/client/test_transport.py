"""Transport: every endpoint the client uses is a typed method with its path here, and error answers come
back as `vigil.errors`."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from vigil.client.transport import StaleDeviceList, Transport
from vigil.errors import NotFoundError, PolicyViolation
from vigil.protocol.contacts import AccountReportRequest
from vigil.protocol.reports import ReportReason

HEAD = {"version": 2, "root": "ab" * 32, "log_size": 2, "log_head": "cd" * 32}
REQUEST_VIEW = {"id": 7, "requester": "teen", "recipient": "adult", "state": "pending", "created_at_ms": 1}
ANSWERS: dict[tuple[str, str], Any] = {
    ("POST", "/v1/contacts/requests"): REQUEST_VIEW,
    ("GET", "/v1/contacts/requests"): {"incoming": [], "outgoing": [REQUEST_VIEW]},
    ("POST", "/v1/contacts/requests/7/accept"): REQUEST_VIEW | {"state": "accepted"},
    ("GET", "/v1/contacts"): {"contacts": ["adult"]},
    ("POST", "/v1/contacts/report"): {
        "report_id": 1,
        "case_id": 2,
        "reported": "adult",
        "verified": [],
        "blocked": True,
    },
    ("GET", "/v1/safety/notice-key"): {"public_key": "a" * 43 + "="},
    ("GET", "/v1/safety/notices"): {"notices": []},
    ("GET", "/v1/hashlist/head"): HEAD,
    ("GET", "/v1/hashlist/manifests"): {"manifests": [], "head": HEAD},
}


def _transport(seen: list[httpx.Request], status: int = 200, body: Any = None) -> Transport:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if body is not None:
            return httpx.Response(status, json=body)
        return httpx.Response(200, json=ANSWERS[(request.method, request.url.path)])

    transport = Transport("http://vigil.test", "credential")
    transport._http = httpx.AsyncClient(base_url="http://vigil.test", transport=httpx.MockTransport(answer))
    return transport


CALLS: list[tuple[Callable[[Transport], Awaitable[Any]], str, str, dict[str, str]]] = [
    (lambda t: t.request_contact("adult"), "POST", "/v1/contacts/requests", {}),
    (lambda t: t.contact_requests(), "GET", "/v1/contacts/requests", {}),
    (lambda t: t.answer_contact_request(7, "accept"), "POST", "/v1/contacts/requests/7/accept", {}),
    (lambda t: t.contacts(), "GET", "/v1/contacts", {}),
    (
        lambda t: t.report_account(AccountReportRequest(username="adult", reason=ReportReason.SPAM)),
        "POST",
        "/v1/contacts/report",
        {},
    ),
    (lambda t: t.notice_key(), "GET", "/v1/safety/notice-key", {}),
    (lambda t: t.safety_notices(after=3), "GET", "/v1/safety/notices", {"after": "3"}),
    (lambda t: t.hashlist_head(), "GET", "/v1/hashlist/head", {}),
    (lambda t: t.hashlist_manifests(since=1), "GET", "/v1/hashlist/manifests", {"since": "1"}),
]


@pytest.mark.parametrize(("call", "method", "path", "params"), CALLS)
async def test_typed_methods_hit_their_endpoint_with_the_credential(
    call: Callable[[Transport], Awaitable[Any]], method: str, path: str, params: dict[str, str]
) -> None:
    seen: list[httpx.Request] = []
    await call(_transport(seen))
    [request] = seen
    assert (request.method, request.url.path, dict(request.url.params)) == (method, path, params)
    assert request.headers["Authorization"] == "Bearer credential"


async def test_contact_request_body_names_only_the_recipient() -> None:
    seen: list[httpx.Request] = []
    await _transport(seen).request_contact("adult")
    assert json.loads(seen[0].content) == {"to": "adult"}


async def test_error_answers_become_vigil_errors() -> None:
    with pytest.raises(PolicyViolation):
        await _transport([], 403, {"error": "policy_violation", "detail": "blocked"}).request_contact("x" * 3)
    with pytest.raises(NotFoundError):
        await _transport([], 404, {"error": "not_found", "detail": "no"}).contacts()
    stale = {"error": "stale_devices", "detail": "d", "missing": {}, "extra": {}, "devices": {}}
    with pytest.raises(StaleDeviceList):
        await _transport([], 409, stale).contacts()

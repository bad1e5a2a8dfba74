"""Property-based API test: schemathesis generates requests (valid and invalid) from the published
OpenAPI schema and sends them, with a registered device's credential, to a real server. No request may
get a 5xx. Bounded in examples per operation so that it stays well under a minute."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import register
from live_server import ServerProcess, running_server

from vigil.server.app import create_app
from vigil.server.settings import Settings

schemathesis = pytest.importorskip("schemathesis", reason="in the dev extra: pip install -e '.[dev]'")
from hypothesis import HealthCheck, Phase, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

schema = schemathesis.openapi.from_dict(create_app(Settings(data_dir=Path("unused"))).openapi())


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("fuzz")
    # Rate limits would turn most generated requests into 429s: off, to reach the handlers.
    with running_server("sqlite", tmp, {"VIGIL_RATE_LIMITS_ENABLED": "false"}) as server:

        async def credential() -> str:
            client = await register(server.url, tmp, "fuzzer")
            secret = client.store.get_secret("credential") or ""
            await client.close()
            return secret

        yield server, {"Authorization": f"Bearer {asyncio.run(credential())}"}
    log = server.log_path.read_text()
    assert "Traceback" not in log, log[-3000:]


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_request_gets_a_server_error(
    case: schemathesis.Case, fuzzed: tuple[ServerProcess, dict[str, str]]
) -> None:
    server, auth = fuzzed
    response = case.call(base_url=server.url, headers=auth, timeout=10)
    case.validate_response(response, checks=[not_a_server_error])


# Hand-written classes of hostile input schemathesis does not generate (or rarely does), sent to every
# route of the published schema: each must get a 4xx whose JSON body names the problem (`error`), never a
# 5xx, and never an echo of what was sent.
HUGE = 10**40
_PROBE_MARK = "probe-9f3a"  # sent in strings; an answer that contains it echoed the request
_HOSTILE_VALUES: list[object] = [
    HUGE,
    -HUGE,
    1e308 * 10,  # JSON has no infinity: serialised as a huge literal below
    f"{_PROBE_MARK}\x00nul",
    f"{_PROBE_MARK}\ud800",  # a lone surrogate
    f"{_PROBE_MARK}" * 20_000,
    [[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]],
    {"$ref": _PROBE_MARK},
    True,
    None,
]
# Routes that answer without an account: their bodies and parameters are still probed.
_PUBLIC = {
    ("GET", "/v1/health"),
    ("GET", "/v1/ready"),
    ("GET", "/v1/retention"),
    ("POST", "/v1/accounts"),
    ("GET", "/v1/hashlist/head"),
    ("GET", "/v1/hashlist/authority"),
    ("GET", "/v1/hashlist/manifests"),
    ("GET", "/v1/safety/notice-key"),
}
_ROUTES = [
    (method.upper(), path, operation)
    for path, operations in schema.raw_schema["paths"].items()
    for method, operation in operations.items()
]


def _concrete(path: str, value: str) -> str:
    for name in ("device_id", "username", "blob_id", "group_id", "request_id", "answer"):
        path = path.replace("{" + name + "}", value)
    return path


def _properties(operation: dict[str, object]) -> list[str]:
    content = operation.get("requestBody", {}).get("content", {})  # type: ignore[attr-defined]
    body_schema = content.get("application/json", {}).get("schema", {})
    ref = body_schema.get("$ref")
    if ref:
        body_schema = schema.raw_schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return list(body_schema.get("properties", {}))


def _json_text(value: object) -> str:
    import json

    text = json.dumps(value, allow_nan=True)
    return text.replace("Infinity", "1" + "0" * 400)


def _problems(response: httpx.Response, what: str) -> list[str]:
    found = []
    if not 400 <= response.status_code < 500:
        found.append(f"{what}: {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        return [*found, f"{what}: {response.status_code} not JSON: {response.text[:80]!r}"]
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        found.append(f"{what}: {response.status_code} without an error code: {response.text[:120]!r}")
    if _PROBE_MARK in response.text:
        found.append(f"{what}: {response.status_code} echoes the request")
    return found


def test_hostile_bodies_paths_and_credentials_get_a_json_4xx(
    fuzzed: tuple[ServerProcess, dict[str, str]],
) -> None:
    server, auth = fuzzed
    problems: list[str] = []
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for method, path, operation in _ROUTES:
            sample = _concrete(path, "nobody")
            # Missing and malformed credentials: 401 wherever an account is needed.
            if (method, path) not in _PUBLIC:
                for header in (
                    {},
                    {"Authorization": b"Bearer \x7f\xff"},  # refused by the HTTP parser itself
                    {"Authorization": "Bearer " + "A" * 5000},
                    {"Authorization": "Basic " + _PROBE_MARK},
                ):
                    response = http.request(method, sample, headers=header, content=b"{}")
                    what = f"{method} {path} auth={str(list(header.values()))[:30]}"
                    problems += _problems(response, what)
                    if response.status_code not in (400, 401):
                        problems.append(f"{what}: {response.status_code}, not 401")
            # Hostile path segments.
            if "{" in path:
                for segment in (
                    "%00",
                    "%ED%A0%80",
                    "9" * 60,
                    "-1",
                    "..%2F..%2Fetc",
                    "x" * 5000,
                    "%F0%9F%92%A3",
                ):
                    response = http.request(method, _concrete(path, segment), headers=auth)
                    if response.status_code != 405:
                        problems += _problems(response, f"{method} {path} segment={segment[:12]}")
            # Hostile query parameters.
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query":
                    for value in (str(HUGE), "-" + str(HUGE), "1e999", "\x00", "nan"):
                        response = http.request(
                            method, sample, headers=auth, params={parameter["name"]: value}
                        )
                        problems += _problems(response, f"{method} {path} ?{parameter['name']}={value[:8]}")
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" not in content:
                continue
            headers = {**auth, "Content-Type": "application/json"}
            bodies = ["{", '{"a": 1', "\x00", "[]", "1", '"s"', "null", '{"a": 1}' + "x"]
            bodies += ["[" * 100_000, '"' + "a" * 3_000_000 + '"', "1" * 5000]
            bodies += [
                _json_text({name: value for name in _properties(operation)}) for value in _HOSTILE_VALUES
            ]
            for body in bodies:
                response = http.request(
                    method, sample, headers=headers, content=body.encode("utf-8", "surrogatepass")
                )
                problems += _problems(response, f"{method} {path} body={body[:24]!r}")
    log = server.log_path.read_text()
    assert "Traceback" not in log, log[-3000:]
    assert problems == [], "\n".join(problems)


async def _account(server: ServerProcess, tmp: Path, name: str) -> tuple[dict[str, str], str, str]:
    client = await register(server.url, tmp, name)
    found = (
        {"Authorization": f"Bearer {client.store.get_secret('credential')}"},
        client.username,
        client.device_id,
    )
    await client.close()
    return found


def test_another_accounts_ids_get_a_json_4xx_and_change_nothing(
    fuzzed: tuple[ServerProcess, dict[str, str]], tmp_path: Path
) -> None:
    """IDOR: an account naming another's device, group, blob or contact request in a URL or body gets a
    JSON 4xx and changes nothing of the owner's."""
    server, _ = fuzzed
    mallory, _, _ = asyncio.run(_account(server, tmp_path, "mallory"))
    bob, bob_name, bob_device = asyncio.run(_account(server, tmp_path, "bob"))
    _, carol_name, _ = asyncio.run(_account(server, tmp_path, "carol"))
    problems: list[str] = []
    with httpx.Client(base_url=server.url, timeout=30) as http:
        group = http.post("/v1/groups", headers=bob, json={"members": []})
        assert group.status_code == 201, group.text
        group_id = group.json()["group_id"]
        blob = http.post(
            "/v1/blobs", headers={**bob, "Content-Type": "application/octet-stream"}, content=b"ciphertext"
        )
        assert blob.status_code in (200, 201), blob.text
        blob_id = blob.json()["blob_id"]
        request = http.post("/v1/contacts/requests", headers=bob, json={"to": carol_name})
        assert request.status_code == 201, request.text
        request_id = request.json()["id"]
        attempts = [
            ("DELETE", f"/v1/devices/{bob_device}", None),
            ("GET", f"/v1/groups/{group_id}", None),
            ("GET", f"/v1/groups/{group_id}/devices", None),
            ("POST", f"/v1/groups/{group_id}/members", {"username": "mallory_x"}),
            ("DELETE", f"/v1/groups/{group_id}/members/{bob_name}", None),
            ("POST", f"/v1/groups/{group_id}/link", None),
            ("DELETE", f"/v1/groups/{group_id}/link", None),
            ("POST", f"/v1/groups/{group_id}/leave", None),
            ("GET", f"/v1/blobs/{blob_id}", None),
            ("POST", f"/v1/contacts/requests/{request_id}/accept", None),
            ("POST", f"/v1/contacts/requests/{request_id}/decline", None),
        ]
        for method, path, body in attempts:
            response = http.request(method, path, headers=mallory, json=body)
            problems += _problems(response, f"mallory {method} {path}")
        # Bob's things are as they were.
        assert http.get("/v1/keys/count", headers=bob).status_code == 200  # his device still signs in
        members = http.get(f"/v1/groups/{group_id}", headers=bob).json()["members"]
        assert [m["username"] for m in members] == [bob_name]
        pending = http.get("/v1/contacts/requests", headers=bob).text
        assert '"state":"pending"' in pending.replace(" ", ""), pending
    assert problems == [], "\n".join(problems)

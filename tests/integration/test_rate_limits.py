"""Each rate limit holds (429, Retry-After, the server's JSON error) and resets when its window has
passed, on a settable clock; with Redis the counts are shared by every worker, and a Redis outage
neither fails requests nor lifts the limits."""

from __future__ import annotations

import types
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import limits.aio.storage.memory
import limits.aio.strategies
import pytest
from helpers import ADULT, unique
from private_redis import PrivateRedis, private_redis_fixture  # noqa: F401 - the fixture

import vigil.server.ratelimit
from vigil.protocol.encoding import b64encode
from vigil.protocol.olm import DeviceAccount
from vigil.server.app import create_app
from vigil.server.capacity import RateLimited
from vigil.server.ratelimit import Limit, RateLimiter
from vigil.server.settings import Settings

WINDOW_S = 60


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The time the rate limiter sees; a test moves it forward instead of sleeping."""
    now = [1_900_000_000.0]
    fake = types.SimpleNamespace(time=lambda: now[0], monotonic=lambda: now[0])
    for module in (limits.aio.storage.memory, limits.aio.strategies, vigil.server.ratelimit):
        monkeypatch.setattr(module, "time", fake)
    return now


@pytest.fixture
async def http(tmp_path: Path, clock: list[float]) -> AsyncIterator[httpx.AsyncClient]:
    rules = {f"rate_limit_{limit.value}": f"3/{WINDOW_S} seconds" for limit in Limit}
    app = create_app(Settings(data_dir=tmp_path, **rules))  # type: ignore[arg-type]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://vigil") as client:
            yield client


async def _register(http: httpx.AsyncClient) -> dict[str, str]:
    response = await http.post("/v1/accounts", json=_registration())
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['credential']}"}


def _registration() -> dict[str, Any]:
    keys = DeviceAccount().device_keys().model_dump()
    return {"username": unique("u"), "birth_date": ADULT.isoformat(), "device": keys}


def _assert_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, (response.status_code, response.text)
    assert 1 <= int(response.headers["Retry-After"]) <= WINDOW_S
    body = response.json()
    assert body["error"] == "rate_limited" and body["detail"].startswith("too many")


async def _holds_then_resets(clock: list[float], request: Callable[[], Any]) -> None:
    """Three requests pass, the fourth is refused; two windows later the budget is back."""
    for _ in range(3):
        assert (await request()).status_code != 429
    _assert_limited(await request())
    _assert_limited(await request())  # a refused request does not open the window again
    clock[0] += 2 * WINDOW_S
    assert (await request()).status_code != 429


def _send(to: str) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "to": to,
        "kind": "text",
        "commitment": b64encode(b"c" * 32),
        "ciphertexts": [{"device_id": "somedevice", "type": 1, "body": b64encode(b"opaque" * 10)}],
    }


async def test_registrations_are_limited_per_address(http: httpx.AsyncClient, clock: list[float]) -> None:
    await _holds_then_resets(clock, lambda: http.post("/v1/accounts", json=_registration()))


async def test_sends_are_limited_per_device(http: httpx.AsyncClient, clock: list[float]) -> None:
    first, second = await _register(http), await _register(http)

    def send(auth: dict[str, str]) -> Any:
        return http.post("/v1/messages", json=_send(unique("g")), headers=auth)

    await _holds_then_resets(clock, lambda: send(first))
    # Another device has its own budget.
    assert (await send(second)).status_code == 404
    for _ in range(2):
        assert (await send(first)).status_code == 404
    _assert_limited(await send(first))


async def test_key_claims_are_limited_per_requester_and_per_target(
    http: httpx.AsyncClient, clock: list[float]
) -> None:
    requester = await _register(http)
    await _holds_then_resets(
        clock, lambda: http.post("/v1/keys/claim", json={"username": unique("t")}, headers=requester)
    )
    clock[0] += 2 * WINDOW_S
    target = unique("target")
    claimers = []
    for _ in range(5):
        claimers.append(await _register(http))
        clock[0] += 2 * WINDOW_S  # registrations have a budget of their own per address

    def claim(claimer: dict[str, str]) -> Any:
        return http.post("/v1/keys/claim", json={"username": target}, headers=claimer)

    for claimer in claimers[:3]:
        assert (await claim(claimer)).status_code == 404
    # A fresh requester is refused too: the target's keys are protected whoever asks.
    _assert_limited(await claim(claimers[3]))
    clock[0] += 2 * WINDOW_S
    assert (await claim(claimers[4])).status_code == 404


async def test_contact_requests_reports_and_uploads_are_limited_per_account(
    http: httpx.AsyncClient, clock: list[float]
) -> None:
    auth = await _register(http)
    await _holds_then_resets(
        clock, lambda: http.post("/v1/contacts/requests", json={"to": unique("x")}, headers=auth)
    )
    report = {"reason": "spam", "messages": [{"payload": {}, "commitment": b64encode(b"c" * 32)}]}
    await _holds_then_resets(clock, lambda: http.post("/v1/reports", json=report, headers=auth))
    octets = {**auth, "Content-Type": "application/octet-stream"}
    await _holds_then_resets(clock, lambda: http.post("/v1/blobs", content=b"blob", headers=octets))


async def test_message_and_account_reports_share_one_budget_per_account(
    http: httpx.AsyncClient, clock: list[float]
) -> None:
    """Report abuse: one account cannot flood the queue by switching between message reports and account
    reports; another account's budget is its own."""
    flooder, other = await _register(http), await _register(http)
    report = {"reason": "csam", "messages": [{"payload": {}, "commitment": b64encode(b"c" * 32)}]}
    account_report = {"username": unique("x"), "reason": "csam", "block": False}
    for _ in range(2):
        assert (await http.post("/v1/reports", json=report, headers=flooder)).status_code != 429
    assert (await http.post("/v1/contacts/report", json=account_report, headers=flooder)).status_code != 429
    _assert_limited(await http.post("/v1/contacts/report", json=account_report, headers=flooder))
    _assert_limited(await http.post("/v1/reports", json=report, headers=flooder))
    assert (await http.post("/v1/reports", json=report, headers=other)).status_code != 429


async def test_disabled_rate_limits_let_everything_through(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        rate_limits_enabled=False,
        rate_limit_sends_per_device="1/hour",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://vigil") as http:
            auth = await _register(http)
            for _ in range(5):
                response = await http.post("/v1/messages", json=_send(unique("g")), headers=auth)
                assert response.status_code == 404


async def test_redis_shares_counts_across_workers_and_an_outage_keeps_limits(
    private_redis: PrivateRedis,
) -> None:
    rules = {Limit.SENDS_PER_DEVICE: "3/hour"}
    workers = [RateLimiter(rules, private_redis.url), RateLimiter(rules, private_redis.url)]
    device = uuid.uuid4().hex
    for n in range(3):
        await workers[n % 2].hit(Limit.SENDS_PER_DEVICE, device)
    for worker in workers:
        with pytest.raises(RateLimited) as refused:
            await worker.hit(Limit.SENDS_PER_DEVICE, device)
        assert 1 <= refused.value.retry_after_s <= 3600

    # Redis down: no request fails for it, and each worker still limits with its own counts.
    private_redis.stop()
    other = uuid.uuid4().hex
    for _ in range(3):
        await workers[0].hit(Limit.SENDS_PER_DEVICE, other)
    with pytest.raises(RateLimited):
        await workers[0].hit(Limit.SENDS_PER_DEVICE, other)


async def test_deployments_sharing_one_redis_keep_their_own_counts(
    private_redis: PrivateRedis, tmp_path: Path
) -> None:
    rules = {Limit.REGISTRATIONS_PER_ADDRESS: "2/hour"}
    address = "198.51.100.9"
    staging, production = (
        Settings(data_dir=tmp_path / name, redis_url=private_redis.url).resolved_redis_namespace
        for name in ("staging", "production")
    )
    assert staging != production
    staging_workers = [RateLimiter(rules, private_redis.url, staging) for _ in range(2)]
    for worker in staging_workers:
        await worker.hit(Limit.REGISTRATIONS_PER_ADDRESS, address)
    with pytest.raises(RateLimited):  # the same deployment's workers share one count
        await staging_workers[0].hit(Limit.REGISTRATIONS_PER_ADDRESS, address)
    # Another deployment on the same Redis starts from zero.
    await RateLimiter(rules, private_redis.url, production).hit(Limit.REGISTRATIONS_PER_ADDRESS, address)
    assert Settings(data_dir=tmp_path, redis_namespace="blue").resolved_redis_namespace == "blue"


async def test_group_joins_by_link_are_limited_per_account(
    http: httpx.AsyncClient, clock: list[float]
) -> None:
    """Guessing invite links costs the budget too: an unknown token counts like a join."""
    auth = await _register(http)

    def join() -> Any:
        return http.post("/v1/groups/join", json={"token": "A" * 43}, headers=auth)

    assert (await join()).status_code == 404
    clock[0] += 2 * WINDOW_S
    await _holds_then_resets(clock, join)

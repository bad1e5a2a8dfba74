"""Group commit of sends (services/messaging.py): concurrent sends share one transaction, yet each gets
its own id, timestamp and answer; a refused message fails alone; a failed transaction is retried one
message at a time. On SQLite and (when reachable) PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import secrets
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from live_server import create_postgres_database, drop_postgres_database, require_backend

from vigil.errors import NotFoundError, ValidationError
from vigil.protocol.olm import DeviceAccount
from vigil.protocol.wire import MessageKind, RegisterAccountRequest, SendAccepted, SendRequest
from vigil.server.context import ServerContext
from vigil.server.db.messaging import MessageRepository
from vigil.server.services import accounts, messaging
from vigil.server.services.accounts import AuthenticatedDevice
from vigil.server.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now_ms = 1_800_000_000_000

    def __call__(self) -> int:
        self.now_ms += 1
        return self.now_ms


@pytest.fixture(params=["sqlite", "postgres"])
async def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ServerContext]:
    require_backend(request.param)
    database, url = None, None
    if request.param == "postgres":
        database, url = create_postgres_database()
    try:
        async with ServerContext.open(Settings(data_dir=tmp_path, database_url=url), clock_ms=Clock()) as ctx:
            yield ctx
    finally:
        if database is not None:
            drop_postgres_database(database)


async def _user(ctx: ServerContext, name: str) -> AuthenticatedDevice:
    registered = await accounts.register_account(
        ctx,
        RegisterAccountRequest(
            username=name, birth_date=dt.date(1990, 1, 1), device=DeviceAccount().device_keys()
        ),
    )
    return await accounts.authenticate(ctx, registered.credential)


def _request(to: str, device_id: str, message_id: str | None = None) -> SendRequest:
    return SendRequest.model_validate(
        {
            "id": message_id or str(uuid.uuid4()),
            "to": to,
            "kind": MessageKind.TEXT.value,
            "commitment": base64.b64encode(secrets.token_bytes(32)).decode(),
            "ciphertexts": [
                {"device_id": device_id, "type": 1, "body": base64.b64encode(b"x" * 300).decode()}
            ],
        }
    )


def _count_batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sizes: list[int] = []
    original = messaging._send_batch

    async def spy(ctx: ServerContext, items: Sequence[Any]) -> Any:
        sizes.append(len(items))
        return await original(ctx, items)

    monkeypatch.setattr(messaging, "_send_batch", spy)
    return sizes


async def test_concurrent_sends_share_a_transaction_but_get_their_own_ids_and_timestamps(
    ctx: ServerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = await _user(ctx, "alice"), await _user(ctx, "bob")
    sizes = _count_batches(monkeypatch)
    requests = [_request("bob", bob.device_id) for _ in range(40)]
    accepted = await asyncio.gather(*(messaging.send_message(ctx, alice, r) for r in requests))
    assert max(sizes) > 1, sizes  # they really were committed together
    assert [a.message_id for a in accepted] == [r.id for r in requests]
    assert len({a.server_ts_ms for a in accepted}) == 40
    assert not any(a.duplicate for a in accepted)
    pending = await messaging.fetch_pending(ctx, bob, limit=100)
    by_id = {d.message_id: d for d in pending.messages}
    assert len(by_id) == 40 and len({d.delivery_id for d in pending.messages}) == 40
    for a in accepted:
        assert by_id[a.message_id].server_ts_ms == a.server_ts_ms


async def test_a_refused_message_fails_alone_and_a_retry_in_the_same_batch_is_a_duplicate(
    ctx: ServerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = await _user(ctx, "alice"), await _user(ctx, "bob")
    sizes = _count_batches(monkeypatch)
    good = [_request("bob", bob.device_id) for _ in range(5)]
    retry = good[2].model_copy()
    unknown = _request("nobody", bob.device_id)
    stale = _request("bob", "not-a-device")
    bad_base64 = _request("bob", bob.device_id).model_copy(update={"commitment": "!!!"})
    calls = [*good[:3], unknown, stale, bad_base64, retry, *good[3:]]
    results = await asyncio.gather(
        *(messaging.send_message(ctx, alice, r) for r in calls), return_exceptions=True
    )
    assert max(sizes) > 1, sizes
    assert isinstance(results[3], NotFoundError)
    assert isinstance(results[4], messaging.StaleDevicesError)
    assert isinstance(results[5], ValidationError)
    accepted = [r for r in results if isinstance(r, SendAccepted)]
    assert len(accepted) == 6
    first, again = results[2], results[6]
    assert isinstance(first, SendAccepted) and isinstance(again, SendAccepted)
    assert not first.duplicate and again.duplicate and again.server_ts_ms == first.server_ts_ms
    pending = await messaging.fetch_pending(ctx, bob, limit=100)
    assert sorted(d.message_id for d in pending.messages) == sorted(r.id for r in good)
    # A retry in a later transaction is answered as a duplicate too.
    later = await messaging.send_message(ctx, alice, good[0])
    assert later.duplicate


async def test_a_failed_batch_transaction_is_retried_message_by_message(
    ctx: ServerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = await _user(ctx, "alice"), await _user(ctx, "bob")
    sizes = _count_batches(monkeypatch)
    original = MessageRepository.add_many

    async def fail_for_batches(self: MessageRepository, messages: Sequence[Any]) -> list[int]:
        if len(messages) > 1:
            raise RuntimeError("simulated database failure")
        return await original(self, messages)

    monkeypatch.setattr(MessageRepository, "add_many", fail_for_batches)
    requests = [_request("bob", bob.device_id) for _ in range(20)]
    accepted = await asyncio.gather(*(messaging.send_message(ctx, alice, r) for r in requests))
    assert max(sizes) > 1, sizes
    assert [a.message_id for a in accepted] == [r.id for r in requests]
    pending = await messaging.fetch_pending(ctx, bob, limit=100)
    assert sorted(d.message_id for d in pending.messages) == sorted(r.id for r in requests)


async def test_acks_of_many_sockets_coalesced_past_the_drivers_parameter_limit(ctx: ServerContext) -> None:
    """A batch of acks larger than a statement may bind as separate parameters (32k) is deleted."""
    alice, bob = await _user(ctx, "alice_acks"), await _user(ctx, "bob_acks")
    sent = [messaging.send_message(ctx, alice, _request(bob.username, bob.device_id)) for _ in range(30)]
    await asyncio.gather(*sent)
    pending = await messaging.fetch_pending(ctx, bob, limit=100)
    real = [m.delivery_id for m in pending.messages]
    # 20 sockets' acks of 1,000 ids each in one batch: 40,000 parameters as a single statement.
    unknown = [tuple(range(10_000_000 + n * 1000, 10_000_001 + n * 1000 + 999)) for n in range(1, 20)]
    items = [(bob.device_id, tuple(real)), *((bob.device_id, ids) for ids in unknown)]
    counts = await messaging._ack_batch(ctx, items)
    assert counts[0] == len(real) == 30 and counts[1:] == [0] * 19
    assert (await messaging.fetch_pending(ctx, bob, limit=100)).messages == []


async def test_a_retry_of_an_accepted_message_is_a_duplicate_even_if_it_would_now_be_refused(
    ctx: ServerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch does not look for earlier messages before its checks: a retry that passes them fails
    the insert and the batch runs again looking first; one that fails them is looked up before the
    refusal is answered. Either way the retry gets the first answer, and new messages beside it go in."""
    alice, bob = await _user(ctx, "alice_retry"), await _user(ctx, "bob_retry")
    first = [_request(bob.username, bob.device_id) for _ in range(4)]
    answers = await asyncio.gather(*(messaging.send_message(ctx, alice, r) for r in first))
    sizes = _count_batches(monkeypatch)
    fresh = [_request(bob.username, bob.device_id) for _ in range(4)]
    mixed = [fresh[0], first[1], fresh[1], fresh[2], first[3], fresh[3]]
    again = await asyncio.gather(*(messaging.send_message(ctx, alice, r) for r in mixed))
    assert max(sizes) > 1, sizes
    assert [a.duplicate for a in again] == [False, True, False, False, True, False]
    assert again[1].server_ts_ms == answers[1].server_ts_ms
    assert again[4].franking_tag == answers[3].franking_tag
    # The device list the retry was encrypted for is gone: still the duplicate, not a 409.
    stale_retry = first[2].model_copy(
        update={"ciphertexts": [first[2].ciphertexts[0].model_copy(update={"device_id": "gone"})]}
    )
    late = await asyncio.gather(
        messaging.send_message(ctx, alice, stale_retry),
        messaging.send_message(ctx, alice, _request(bob.username, "gone")),
        return_exceptions=True,
    )
    assert isinstance(late[0], SendAccepted) and late[0].duplicate
    assert late[0].server_ts_ms == answers[2].server_ts_ms
    assert isinstance(late[1], messaging.StaleDevicesError)
    pending = await messaging.fetch_pending(ctx, bob, limit=100)
    assert sorted(d.message_id for d in pending.messages) == sorted(r.id for r in first + fresh)

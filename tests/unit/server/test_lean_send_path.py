"""The lean relay path (issue 12): the one-query recipient lookup against the rows it replaces, the
hand-written body and ack parsing against the models they stand in for, and IN-list padding."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pydantic
import pytest
from live_server import create_postgres_database, drop_postgres_database, require_backend
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.protocol.wire import AckRequest, SendRequest
from vigil.server.api.messages import _send_request
from vigil.server.api.stream import _ack_ids
from vigil.server.db.accounts import DeviceRepository, DeviceRow, StandingRepository, UserRepository, UserRow
from vigil.server.db.contacts import BlockRepository, ContactRepository
from vigil.server.db.engine import create_engine, migrate, session_factory
from vigil.server.db.messaging import MessageRepository, MessageRow, QueueRow, padded
from vigil.server.db.metadata import MetadataEventRow
from vigil.server.db.sending import SendingRepository

T0 = 1_800_000_000_000


@pytest.fixture(params=["sqlite", "postgres"])
async def session(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncSession]:
    require_backend(request.param)
    database = None
    url = f"sqlite+aiosqlite:///{tmp_path / 'sending.db'}"
    if request.param == "postgres":
        database, url = create_postgres_database()
    engine = create_engine(url)
    try:
        await migrate(engine)
        async with session_factory(engine)() as session, session.begin():
            yield session
    finally:
        await engine.dispose()
        if database is not None:
            drop_postgres_database(database)


async def _user(session: AsyncSession, name: str, band: str, devices: int) -> UserRow:
    user = await UserRepository(session).add(UserRow(username=name, age_band=band, created_at_ms=T0))
    for i in range(devices):
        await DeviceRepository(session).add(
            DeviceRow(
                id=f"{name}-d{i}",
                user_id=user.id,
                curve25519="c",
                ed25519="e",
                signature="s",
                credential_sha256=b"x" * 32,
                created_at_ms=T0 + (devices - i),  # registration order is not the id order
            )
        )
    return user


async def test_recipient_in_one_query_matches_the_separate_lookups(session: AsyncSession) -> None:
    adult = await _user(session, "adult", "adult", 2)
    minor = await _user(session, "minor", "13-15", 1)
    deviceless = await _user(session, "deviceless", "adult", 0)
    sending = SendingRepository(session)

    assert await sending.recipient(adult.id, "nobody") is None
    found = await sending.recipient(adult.id, "minor")
    assert found is not None
    assert (found.user_id, found.username, found.age_band) == (minor.id, "minor", "13-15")
    assert (found.sender_standing, found.blocked_by_recipient, found.connected) == (None, False, False)
    assert found.device_ids == {minor.id: ["minor-d0"], adult.id: ["adult-d1", "adult-d0"]}

    await BlockRepository(session).add(minor.id, adult.id, T0)
    ContactRepository(session).connect(minor.id, adult.id, T0)
    await StandingRepository(session).set(adult.id, "restricted", T0)
    await session.flush()
    found = await sending.recipient(adult.id, "minor")
    assert found is not None
    assert (found.sender_standing, found.blocked_by_recipient, found.connected) == ("restricted", True, True)
    # The other direction: the block and the standing are the sender's, the connection is symmetric.
    back = await sending.recipient(minor.id, "adult")
    assert back is not None
    assert (back.sender_standing, back.blocked_by_recipient, back.connected) == (None, False, True)

    empty = await sending.recipient(minor.id, "deviceless")
    assert empty is not None and empty.device_ids == {deviceless.id: [], minor.id: ["minor-d0"]}
    own = await sending.recipient(adult.id, "adult")
    assert own is not None and own.device_ids == {adult.id: ["adult-d1", "adult-d0"]}


GOOD = {
    "id": "0b6f7f2e-3f8c-4c7e-9d8e-2b7f3c9d1a11",
    "to": "bob",
    "kind": "text",
    "commitment": "Y" * 43 + "=",
    "ciphertexts": [{"device_id": "dev", "type": 1, "body": "b3BhcXVl"}],
}


def _answer(parsed: SendRequest | Any) -> tuple[int, dict[str, Any]]:
    assert not isinstance(parsed, SendRequest)
    return parsed.status_code, json.loads(parsed.body)


def test_send_body_parsed_as_fastapi_did() -> None:
    assert _send_request(json.dumps(GOOD).encode(), "application/json") == SendRequest.model_validate(GOOD)
    assert isinstance(_send_request(json.dumps(GOOD).encode(), None), SendRequest)
    assert isinstance(
        _send_request(json.dumps(GOOD).encode(), "application/vnd.x+json; charset=utf-8"), SendRequest
    )

    status, body = _answer(_send_request(b"", "application/json"))
    assert (status, body["error"], body["detail"][0]["loc"]) == (422, "invalid_request", ["body"])
    status, body = _answer(_send_request(json.dumps(GOOD).encode(), "text/plain"))
    assert (status, body["error"]) == (422, "invalid_request")
    status, body = _answer(_send_request(b"{not json", "application/json"))
    assert (status, body) == (
        400,
        {"error": "malformed_json", "detail": "the request body is not valid JSON"},
    )
    status, body = _answer(_send_request(json.dumps({**GOOD, "kind": "video-call", "x": 1}).encode(), None))
    assert status == 422 and body["error"] == "invalid_request"
    assert sorted(d["loc"] for d in body["detail"]) == [["body", "kind"], ["body", "x"]]
    # Nothing the client sent is echoed back.
    secret = "c2VjcmV0c2VjcmV0c2VjcmV0"
    status, body = _answer(
        _send_request(
            json.dumps({**GOOD, "ciphertexts": [{"device_id": secret, "type": 7, "body": secret}]}).encode(),
            None,
        )
    )
    assert status == 422 and secret not in json.dumps(body)


@pytest.mark.parametrize(
    "ids",
    [
        [1, 2, 3],
        [2**63 - 1],
        [],
        [0],
        [-1],
        [2**63],
        ["5"],
        [5.0],
        [True],
        None,
        "1",
        list(range(1, 1002)),
        [{"a": 1}],
    ],
)
def test_ack_ids_accept_and_refuse_as_the_model_does(ids: object) -> None:
    try:
        expected: list[int] | None = AckRequest.model_validate({"delivery_ids": ids}).delivery_ids
    except pydantic.ValidationError:
        expected = None
    try:
        got: list[int] | None = _ack_ids(ids)
    except pydantic.ValidationError:
        got = None
    assert got == expected


def test_padded_in_lists_come_in_powers_of_two() -> None:
    assert padded([]) == []
    assert padded([7]) == [7]
    assert padded([1, 2, 3]) == [1, 2, 3, 3]
    assert len(padded(list(range(1000)))) == 1024
    assert set(padded(list(range(1000)))) == set(range(1000))


async def test_a_send_batch_is_inserted_in_batch_order_with_its_events(session: AsyncSession) -> None:
    """`insert_batch` (one statement on PostgreSQL): each message's entry ids, in the batch's order (the
    order per sender-device a socket is handed), every column written, and the metadata events."""
    alice = await _user(session, "alice", "adult", 1)
    await _user(session, "bob", "adult", 2)  # the devices the entries are queued for

    def message(client_id: str, ts: int) -> dict[str, Any]:
        return {
            "client_id": client_id,
            "sender_user_id": alice.id,
            "sender_device_id": "alice-d0",
            "conversation": "bob",
            "kind": "text",
            "commitment": b"c" * 32,
            "franking_tag": b"t" * 32,
            "server_ts_ms": ts,
            "device_count": 2,
        }

    def entries(tag: bytes) -> list[dict[str, Any]]:
        return [{"device_id": f"bob-d{i}", "message_type": 1, "body": tag + bytes([i])} for i in (1, 0)]

    event = {
        "at_ms": T0,
        "kind": "message",
        "actor": "p-alice",
        "target": "p-bob",
        "group_id": None,
        "content": "text",
        "reason": None,
    }
    batch = [(message(f"m{i}", T0 + i), entries(b"m%d" % i)) for i in range(3)]
    inserted = await SendingRepository(session).insert_batch(batch, [event, {**event, "at_ms": T0 + 1}])

    flat = [entry_id for ids in inserted for entry_id in ids]
    assert [len(ids) for ids in inserted] == [2, 2, 2] and flat == sorted(flat) and len(set(flat)) == 6
    rows = (
        await session.execute(
            select(
                QueueRow.id, QueueRow.device_id, QueueRow.body, MessageRow.client_id, MessageRow.server_ts_ms
            )
            .join(MessageRow, MessageRow.id == QueueRow.message_id)
            .order_by(QueueRow.id)
        )
    ).all()
    assert [tuple(row) for row in rows] == [
        (entry_id, f"bob-d{i}", b"m%d" % n + bytes([i]), f"m{n}", T0 + n)
        for n, ids in enumerate(inserted)
        for entry_id, i in zip(ids, (1, 0), strict=True)
    ]
    stored = (await session.execute(select(MessageRow))).scalars().all()
    assert {(m.commitment, m.franking_tag, m.device_count, m.kind) for m in stored} == {
        (b"c" * 32, b"t" * 32, 2, "text")
    }
    events = (await session.execute(select(MetadataEventRow).order_by(MetadataEventRow.id))).scalars().all()
    assert [(e.at_ms, e.actor, e.target, e.content) for e in events] == [
        (T0, "p-alice", "p-bob", "text"),
        (T0 + 1, "p-alice", "p-bob", "text"),
    ]


async def test_an_ack_deletes_only_the_acking_devices_own_entries(session: AsyncSession) -> None:
    alice = await _user(session, "alice", "adult", 1)
    await _user(session, "bob", "adult", 2)
    values = {
        "sender_user_id": alice.id,
        "sender_device_id": "alice-d0",
        "conversation": "bob",
        "kind": "text",
        "commitment": b"c" * 32,
        "franking_tag": b"t" * 32,
        "server_ts_ms": T0,
        "device_count": 2,
    }
    entries = [{"device_id": f"bob-d{i}", "message_type": 1, "body": b"x"} for i in (0, 1)]
    first, second = await SendingRepository(session).insert_batch(
        [({**values, "client_id": "m0"}, entries), ({**values, "client_id": "m1"}, entries)], []
    )
    messages = MessageRepository(session)
    acked = {("bob-d0", first[0]), ("bob-d0", first[1]), ("bob-d1", first[1]), ("bob-d1", 10**12)}
    # bob-d0 naming bob-d1's entry and an entry that does not exist delete nothing
    assert await messages.delete_entries_of(acked) == {("bob-d0", first[0]), ("bob-d1", first[1])}
    assert await messages.delete_entries_of(acked) == set()
    left = (await session.execute(select(QueueRow.device_id, QueueRow.id).order_by(QueueRow.id))).all()
    assert [tuple(row) for row in left] == [("bob-d0", second[0]), ("bob-d1", second[1])]

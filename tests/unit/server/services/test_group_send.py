"""Group sends (services/groups.py) store the Megolm ciphertext once, on the message row, with one
bodiless queue entry per recipient device; the push and catch-up reads join it back; the body goes
with the message's last queue entry (ack, device deletion, abandoned-entry sweep) while the delivery
record lives on; concurrent group sends are committed together and keep each sender device's order.
On SQLite and (when reachable) PostgreSQL."""

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
from sqlalchemy import delete, func, select

from vigil.errors import NotFoundError
from vigil.protocol.group_wire import CreateGroupRequest, GroupSendRequest
from vigil.protocol.olm import DeviceAccount
from vigil.protocol.wire import AckRequest, MessageKind, RegisterAccountRequest
from vigil.server.context import ServerContext
from vigil.server.db.deletion import DeletionRepository
from vigil.server.db.messaging import MessageRepository, MessageRow, QueueRow
from vigil.server.services import accounts, groups, messaging, retention
from vigil.server.services.accounts import AuthenticatedDevice
from vigil.server.settings import Settings

T0 = 1_800_000_000_000
DAY = 24 * 3600 * 1000
# A framed group ciphertext: version 1, a 32-byte session id, then the Megolm message.
FRAME = b"\x01" + bytes(32)


class Clock:
    def __init__(self) -> None:
        self.now_ms = T0

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


async def _group(ctx: ServerContext, size: int) -> tuple[str, AuthenticatedDevice, list[AuthenticatedDevice]]:
    sender = await _user(ctx, "sender")
    members = [await _user(ctx, f"member{i}") for i in range(size)]
    info = await groups.create_group(ctx, sender, CreateGroupRequest(members=[m.username for m in members]))
    return info.group_id, sender, members


def _send(
    members: Sequence[AuthenticatedDevice], body: bytes, message_id: str | None = None
) -> GroupSendRequest:
    return GroupSendRequest.model_validate(
        {
            "id": message_id or str(uuid.uuid4()),
            "kind": MessageKind.TEXT.value,
            "commitment": base64.b64encode(secrets.token_bytes(32)).decode(),
            "body": base64.b64encode(body).decode(),
            "devices": [m.device_id for m in members],
        }
    )


async def _stored(ctx: ServerContext) -> tuple[list[bytes | None], list[bytes | None]]:
    """(every message's shared body, every queue entry's own body)."""
    async with ctx.sessions() as session:
        shared = list(await session.scalars(select(MessageRow.shared_body).order_by(MessageRow.id)))
        own = list(await session.scalars(select(QueueRow.body)))
    return shared, own


async def test_a_group_message_is_stored_once_and_read_back_through_the_join(ctx: ServerContext) -> None:
    group_id, sender, members = await _group(ctx, 3)
    body = FRAME + b"megolm" + secrets.token_bytes(300)
    accepted = await groups.send_group_message(ctx, sender, group_id, _send(members, body))
    assert accepted.devices == 3
    shared, own = await _stored(ctx)
    assert shared == [body]
    assert own == [None, None, None]  # three small entries, no copies of the ciphertext
    for member in members:
        fetched = await messaging.fetch_pending(ctx, member, limit=10)
        [delivery] = fetched.messages
        assert base64.b64decode(delivery.body) == body
        assert delivery.message_id == accepted.message_id
        assert delivery.franking_tag == accepted.franking_tag
        wire, more = await messaging.fetch_pending_wire(ctx, member.device_id, limit=10)
        assert [base64.b64decode(d["body"]) for d in wire] == [body] and not more


async def test_the_body_goes_with_the_last_acknowledgement_and_the_record_stays(ctx: ServerContext) -> None:
    group_id, sender, members = await _group(ctx, 3)
    body = FRAME + b"megolm" + secrets.token_bytes(64)
    await groups.send_group_message(ctx, sender, group_id, _send(members, body))
    for index, member in enumerate(members):
        [delivery] = (await messaging.fetch_pending(ctx, member, limit=10)).messages
        assert await messaging.acknowledge(ctx, member, AckRequest(delivery_ids=[delivery.delivery_id])) == 1
        shared, _ = await _stored(ctx)
        # Still needed by the members who have not acknowledged it; gone with the last entry.
        assert shared == ([body] if index < len(members) - 1 else [None])
    async with ctx.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(QueueRow)) == 0
        assert await session.scalar(select(func.count()).select_from(MessageRow)) == 1  # the delivery record


async def test_deleting_the_last_waiting_device_drops_the_body(ctx: ServerContext) -> None:
    group_id, sender, members = await _group(ctx, 2)
    await groups.send_group_message(ctx, sender, group_id, _send(members, FRAME + b"first"))
    [delivery] = (await messaging.fetch_pending(ctx, members[0], limit=10)).messages
    await messaging.acknowledge(ctx, members[0], AckRequest(delivery_ids=[delivery.delivery_id]))
    assert (await _stored(ctx))[0] == [FRAME + b"first"]
    async with ctx.sessions() as session, session.begin():
        assert await DeletionRepository(session).delete_devices([members[1].device_id]) == (1, 1)
    assert (await _stored(ctx))[0] == [None]


async def test_the_abandoned_entry_sweep_drops_bodies_left_without_entries(ctx: ServerContext) -> None:
    group_id, sender, members = await _group(ctx, 2)
    await groups.send_group_message(ctx, sender, group_id, _send(members, FRAME + b"old"))
    # An orphan as two concurrent acknowledgements on different workers could leave it.
    async with ctx.sessions() as session, session.begin():
        await session.execute(delete(QueueRow))
    await groups.send_group_message(ctx, sender, group_id, _send(members, FRAME + b"waiting"))
    [sweep] = [s for s in retention.SWEEPS if s.name == "abandoned_queue_entries"]
    assert await retention.run_sweep(ctx, sweep, T0 + DAY) == 0  # nothing old enough: no entry goes
    assert (await _stored(ctx))[0] == [None, FRAME + b"waiting"]


async def test_concurrent_group_sends_share_a_transaction_and_keep_the_senders_order(
    ctx: ServerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    group_id, sender, members = await _group(ctx, 4)
    sizes: list[int] = []
    original = groups._send_batch

    async def spy(ctx: ServerContext, items: Sequence[Any]) -> Any:
        sizes.append(len(items))
        return await original(ctx, items)

    monkeypatch.setattr(groups, "_send_batch", spy)
    requests = [_send(members, FRAME + f"message {i}".encode()) for i in range(20)]
    stranger = await _user(ctx, "stranger")
    results = await asyncio.gather(
        *(groups.send_group_message(ctx, sender, group_id, r) for r in requests),
        groups.send_group_message(ctx, stranger, group_id, _send(members, FRAME + b"not a member")),
        groups.send_group_message(ctx, sender, group_id, requests[3]),  # a retry within the batch
        return_exceptions=True,
    )
    assert max(sizes) > 1  # group commit happened
    assert isinstance(results[20], NotFoundError)  # refused alone
    assert results[21].duplicate and results[21].franking_tag == results[3].franking_tag  # type: ignore[union-attr]
    assert all(r.devices == 4 and not r.duplicate for r in results[:20])  # type: ignore[union-attr]
    for member in members:
        fetched = (await messaging.fetch_pending(ctx, member, limit=100)).messages
        assert [base64.b64decode(d.body) for d in fetched] == [
            FRAME + f"message {i}".encode() for i in range(20)
        ]
        assert [d.message_id for d in fetched] == [r.id for r in requests]
    async with ctx.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(MessageRow)) == 20


async def test_direct_messages_keep_their_own_bodies(ctx: ServerContext) -> None:
    alice, bob = await _user(ctx, "alice"), await _user(ctx, "bob")
    async with ctx.sessions() as session, session.begin():
        [(_, [entry_id])] = await MessageRepository(session).add_many(
            [
                (
                    {
                        "client_id": "m1",
                        "sender_user_id": alice.user_id,
                        "sender_device_id": alice.device_id,
                        "conversation": bob.username,
                        "kind": "text",
                        "commitment": bytes(32),
                        "franking_tag": bytes(32),
                        "server_ts_ms": T0,
                        "device_count": 1,
                    },
                    [{"device_id": bob.device_id, "message_type": 1, "body": b"olm for bob"}],
                )
            ]
        )
    [delivery] = (await messaging.fetch_pending(ctx, bob, limit=10)).messages
    assert base64.b64decode(delivery.body) == b"olm for bob"
    assert await messaging.acknowledge(ctx, bob, AckRequest(delivery_ids=[entry_id])) == 1
    assert await _stored(ctx) == ([None], [])


async def test_drains_of_devices_woken_together_share_one_query(
    ctx: ServerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    group_id, sender, members = await _group(ctx, 6)
    for i in range(5):
        await groups.send_group_message(ctx, sender, group_id, _send(members, FRAME + f"m{i}".encode()))
    alone = [await messaging.fetch_pending_wire(ctx, m.device_id, limit=3) for m in members]
    first_ids = [d["delivery_id"] for d in alone[0][0]]
    assert [len(batch) for batch, _ in alone] == [3] * 6 and all(more for _, more in alone)

    queries: list[int] = []
    original = MessageRepository.pending_of_devices

    async def spy(self: MessageRepository, wanted: Any) -> Any:
        queries.append(len(wanted))
        return await original(self, wanted)

    monkeypatch.setattr(MessageRepository, "pending_of_devices", spy)
    together = await asyncio.gather(
        *(messaging.fetch_pending_wire(ctx, m.device_id, limit=3) for m in members),
        # The same device on a second socket that already holds its first two entries in flight.
        messaging.fetch_pending_wire(ctx, members[0].device_id, limit=2, skip=first_ids[:2]),
        messaging.fetch_pending_wire(ctx, members[1].device_id, limit=10),
    )
    assert queries and max(queries) > 1  # several devices' drains in one query
    assert together[:6] == alone
    skipped, more = together[6]
    assert [base64.b64decode(d["body"]) for d in skipped] == [FRAME + b"m2", FRAME + b"m3"] and more
    everything, more = together[7]
    assert [base64.b64decode(d["body"]) for d in everything] == [FRAME + f"m{i}".encode() for i in range(5)]
    assert not more


async def test_a_batch_of_group_entries_gets_its_ids_in_order_and_acks_only_delete_their_own(
    ctx: ServerContext,
) -> None:
    # The batch's entries go in one statement (`add_shared`): each message's ids come back in the order
    # of its devices, and one device's entries follow the messages' order (what its drains read by).
    group_id, sender, members = await _group(ctx, 4)
    devices = [m.device_id for m in members]
    messages = [
        (
            {
                "client_id": f"m{i}",
                "sender_user_id": sender.user_id,
                "sender_device_id": sender.device_id,
                "conversation": f"group:{group_id}",
                "kind": "text",
                "commitment": b"c" * 32,
                "franking_tag": b"t" * 32,
                "server_ts_ms": T0 + i,
                "device_count": len(devices),
                "shared_body": FRAME + f"message {i}".encode(),
            },
            devices[i % 2 :] if i != 1 else list(reversed(devices)),
        )
        for i in range(3)
    ]
    async with ctx.sessions() as session, session.begin():
        inserted = await MessageRepository(session).add_shared(messages)
    async with ctx.sessions() as session:
        stored = {
            (row.message_id, row.device_id): row.id
            for row in await session.scalars(select(QueueRow).order_by(QueueRow.id))
        }
    assert len(stored) == sum(len(d) for _, d in messages)
    for (message_id, entry_ids), (_, device_ids) in zip(inserted, messages, strict=True):
        assert entry_ids == [stored[(message_id, d)] for d in device_ids]
    for member in members:
        fetched = (await messaging.fetch_pending(ctx, member, limit=10)).messages
        expected = [f"m{i}" for i, (_, device_ids) in enumerate(messages) if member.device_id in device_ids]
        assert [d.message_id for d in fetched] == expected

    # Another device's entry named in an ack deletes nothing; the device's own goes.
    first, second = members[0], members[1]
    [mine, *_] = (await messaging.fetch_pending(ctx, first, limit=10)).messages
    [theirs, *_] = (await messaging.fetch_pending(ctx, second, limit=10)).messages
    assert await messaging.acknowledge(ctx, first, AckRequest(delivery_ids=[theirs.delivery_id])) == 0
    assert (
        await messaging.acknowledge(
            ctx, first, AckRequest(delivery_ids=[mine.delivery_id, theirs.delivery_id])
        )
        == 1
    )
    remaining = (await messaging.fetch_pending(ctx, second, limit=10)).messages
    assert remaining[0].delivery_id == theirs.delivery_id

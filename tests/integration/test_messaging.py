"""1:1 messaging through a real server process with real Olm encryption, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from helpers import PASSPHRASE, register, texts
from live_server import ServerProcess

from vigil.client.client import Client
from vigil.client.events import MessageEvent, RejectedDelivery
from vigil.protocol.wire import MessageKind


def _blob_files(server: ServerProcess) -> set[Path]:
    """The blob store's files (the module's server is shared: tests look at the ones they added)."""
    return {p for p in (server.data_dir / "blobs").rglob("*") if p.is_file()}


async def test_alice_and_bob_exchange_messages(server, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    sent = await alice.send_text(bob.username, "hello bob")
    assert sent.devices == 1
    events = await bob.fetch()
    assert texts(events) == ["hello bob"]
    event = events[0]
    assert isinstance(event, MessageEvent)
    assert (event.sender, event.conversation, event.outgoing) == (alice.username, alice.username, False)
    await bob.send_text(alice.username, "hi alice")
    await bob.send_text(alice.username, "how are you?")
    assert texts(await alice.fetch()) == ["hi alice", "how are you?"]
    assert await bob.fetch() == []
    assert [r["payload"]["body"] for r in bob.history(alice.username)] == [
        "hello bob",
        "hi alice",
        "how are you?",
    ]


async def test_offline_recipient_catches_up_over_websocket_then_gets_live_pushes(
    server, tmp_path: Path
) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    for n in range(3):
        await alice.send_text(bob.username, f"while you were away {n}")
    received: list[str] = []

    async def listen() -> None:
        async for event in bob.listen():
            assert isinstance(event, MessageEvent)
            received.append(event.text)
            if len(received) == 4:
                return

    listener = asyncio.create_task(listen())
    deadline = time.monotonic() + 60  # generous: a busy machine is slow, a healthy one is done at once
    while len(received) < 3 and not listener.done() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert received == [f"while you were away {n}" for n in range(3)]
    await alice.send_text(bob.username, "live now")
    await asyncio.wait_for(listener, timeout=60)
    assert received[-1] == "live now"
    assert await bob.fetch() == []  # everything was acknowledged over the socket


async def test_second_device_of_recipient_and_own_copy_on_senders_other_device(
    server, tmp_path: Path
) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    await alice.send_text(bob.username, "before bob had a phone")
    bob_phone = await bob.link_device(tmp_path / "bob-phone.db", PASSPHRASE)
    alice_laptop = await alice.link_device(tmp_path / "alice-laptop.db", PASSPHRASE)
    # alice's cached device lists are stale: the server's 409 makes her encrypt for the new devices too.
    sent = await alice.send_text(bob.username, "to all of bob's devices")
    assert sent.devices == 3
    assert texts(await bob.fetch()) == ["before bob had a phone", "to all of bob's devices"]
    assert texts(await bob_phone.fetch()) == ["to all of bob's devices"]
    copies = await alice_laptop.fetch()
    assert texts(copies) == ["to all of bob's devices"]
    copy = copies[0]
    assert isinstance(copy, MessageEvent) and copy.outgoing and copy.conversation == bob.username
    await bob_phone.send_text(alice.username, "from bob's phone")
    assert texts(await alice.fetch()) == ["from bob's phone"]
    assert texts(await alice_laptop.fetch()) == ["from bob's phone"]
    assert texts(await bob.fetch()) == ["from bob's phone"]


async def test_out_of_order_delivery_decrypts_everything(server, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    await alice.send_text(bob.username, "first contact")
    await bob.fetch()
    await bob.send_text(alice.username, "ack")
    await alice.fetch()
    requests = []
    for n in range(4):
        payload = alice.engine.build_payload(bob.username, MessageKind.TEXT, n, body=f"m{n}")
        requests.append(await alice.prepare(payload, []))
    for index in (3, 0, 2, 1):
        await alice.transport.send(requests[index])
    assert texts(await bob.fetch()) == ["m3", "m0", "m2", "m1"]


async def test_retried_send_is_delivered_once_and_redelivery_is_not_shown_twice(
    server, tmp_path: Path
) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    payload = alice.engine.build_payload(bob.username, MessageKind.TEXT, 1, body="only once")
    request = await alice.prepare(payload, [])
    first = await alice.transport.send(request)
    again = await alice.transport.send(request)
    assert (first.duplicate, again.duplicate) == (False, True)
    assert again.server_ts_ms == first.server_ts_ms
    # bob handles the delivery but "crashes" before acking: the event was kept, so the next fetch hands
    # it out, and the redelivery produces no second event.
    pending = (await bob.transport.fetch()).messages
    assert len(pending) == 1
    await bob._handle(pending)
    assert len((await bob.transport.fetch()).messages) == 1  # not acknowledged yet
    bob = await Client.open(bob.store.path, PASSPHRASE)
    assert texts(await bob.fetch()) == ["only once"]
    assert (await bob.transport.fetch()).messages == []
    assert await bob.fetch() == []


@pytest.mark.fresh_server
async def test_server_killed_mid_conversation_loses_nothing(server, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    await alice.send_text(bob.username, "one")
    assert texts(await bob.fetch()) == ["one"]
    await alice.send_text(bob.username, "two")
    await alice.send_text(bob.username, "three")
    server.restart()  # SIGKILL, then start again on the same database
    assert texts(await bob.fetch()) == ["two", "three"]
    await bob.send_text(alice.username, "after the crash")
    assert texts(await alice.fetch()) == ["after the crash"]


async def test_client_state_survives_reopening_the_store(server, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    await alice.send_text(bob.username, "before reopen")
    await bob.fetch()
    path = bob.store.path
    await bob.close()
    bob = await Client.open(path, PASSPHRASE)
    await alice.send_text(bob.username, "after reopen")
    await bob.send_text(alice.username, "reply after reopen")
    assert texts(await bob.fetch()) == ["after reopen"]
    assert texts(await alice.fetch()) == ["reply after reopen"]


async def test_attachment_round_trip_and_blob_deleted_once_fetched(server, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    image = bytes(range(256)) * 40
    before = _blob_files(server)
    await alice.send_attachment(bob.username, image, "image/png", name="pic.png", caption="look")
    blob_files = _blob_files(server) - before
    assert len(blob_files) == 1 and image not in next(iter(blob_files)).read_bytes()
    events = await bob.fetch()
    assert len(events) == 1 and isinstance(events[0], MessageEvent)
    event = events[0]
    assert event.kind is MessageKind.IMAGE and event.text == "look"
    assert (
        event.attachment is not None and event.attachment.data == image and event.attachment.name == "pic.png"
    )
    assert _blob_files(server) - before == set()


async def test_tampered_ciphertext_commitment_and_attachment_are_rejected(server, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    await alice.send_text(bob.username, "hello")
    await bob.fetch()
    await bob.send_text(alice.username, "hi")  # now alice uses normal (not pre-key) messages
    await alice.fetch()

    payload = alice.engine.build_payload(bob.username, MessageKind.TEXT, 1, body="flipped ciphertext")
    request = await alice.prepare(payload, [])
    body = bytearray(__import__("base64").b64decode(request.ciphertexts[0].body))
    body[len(body) // 2] ^= 0x01
    forged = request.model_copy(
        update={
            "ciphertexts": [
                request.ciphertexts[0].model_copy(
                    update={"body": __import__("base64").b64encode(bytes(body)).decode()}
                )
            ]
        }
    )
    await alice.transport.send(forged)

    payload = alice.engine.build_payload(bob.username, MessageKind.TEXT, 2, body="flipped commitment")
    request = await alice.prepare(payload, [])
    commitment = bytearray(__import__("base64").b64decode(request.commitment))
    commitment[0] ^= 0x80
    await alice.transport.send(
        request.model_copy(update={"commitment": __import__("base64").b64encode(bytes(commitment)).decode()})
    )

    before = _blob_files(server)
    await alice.send_attachment(bob.username, b"the real picture" * 10, "image/jpeg")
    [blob] = _blob_files(server) - before
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0x01
    blob.write_bytes(bytes(data))

    await alice.send_text(bob.username, "genuine")
    events = await bob.fetch()
    rejected = [e for e in events if isinstance(e, RejectedDelivery)]
    assert len(rejected) == 3
    assert "commitment" in rejected[1].reason
    assert texts(events) == ["genuine"]
    assert [r["payload"]["body"] for r in bob.history(alice.username)] == ["hello", "hi", "genuine"]

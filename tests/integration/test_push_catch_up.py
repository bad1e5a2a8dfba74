"""A committed send hands its entries straight to the recipient's socket; when a hand-off cannot be
pushed (the socket has MAX_IN_FLIGHT entries unacknowledged), it is dropped and the socket reads the
queue once acks make room: nothing is missed, nothing is pushed twice, and the sender's order holds."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import uuid
from pathlib import Path

import httpx
import websockets
from helpers import register
from live_server import ServerProcess

from vigil.server.api.stream import MAX_IN_FLIGHT

EXTRA = 20


async def test_hand_offs_dropped_while_the_socket_is_full_are_read_from_the_queue(
    server: ServerProcess, tmp_path: Path
) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    auth = {"Authorization": f"Bearer {bob.store.get_secret('credential')}"}
    opaque = base64.b64encode(secrets.token_bytes(64)).decode()
    sent: list[str] = []
    received: list[tuple[int, str]] = []
    async with websockets.connect(
        server.url.replace("http", "ws") + "/v1/stream",
        additional_headers=auth,
        max_size=2**24,
        ping_interval=None,
    ) as socket:
        # The socket is read all along, as a client's receive loop reads it; only acks are held back.
        # (Leaving frames unread is not "not acking": the client library then stops reading the
        # connection, stops answering the server's keepalive pings, and a send phase longer than the
        # ping interval plus timeout, 40 s, as under a heavily loaded machine, got the socket closed.)
        async def read_frames() -> None:
            async for text in socket:
                received.extend((m["delivery_id"], m["message_id"]) for m in json.loads(text)["messages"])

        async def received_count(count: int) -> None:
            async with asyncio.timeout(60):
                while len(received) < count:
                    if reader.done():
                        reader.result()  # the socket's error, if it failed
                        raise AssertionError("the socket closed")
                    await asyncio.sleep(0.05)
            assert len(received) == count, f"{len(received)} pushed, {count} expected"

        reader = asyncio.create_task(read_frames())
        await asyncio.sleep(0.3)  # subscribed: the sends below are hand-offs (or in the first queue read)
        async with httpx.AsyncClient(
            base_url=server.url,
            headers={"Authorization": f"Bearer {alice.store.get_secret('credential')}"},
            timeout=60,  # a loaded machine answers slowly; what this tests is what the socket does
        ) as http:
            for _ in range(MAX_IN_FLIGHT + EXTRA):  # one after another: one sender device's order
                message_id = str(uuid.uuid4())
                response = await http.post(
                    "/v1/messages",
                    json={
                        "id": message_id,
                        "to": bob.username,
                        "kind": "text",
                        "commitment": base64.b64encode(secrets.token_bytes(32)).decode(),
                        "ciphertexts": [{"device_id": bob.device_id, "type": 1, "body": opaque}],
                    },
                )
                assert response.status_code == 202, response.text
                sent.append(message_id)

        await received_count(MAX_IN_FLIGHT)
        # Full: the last hand-offs were dropped, nothing more comes until acks make room.
        await asyncio.sleep(1.0)
        assert len(received) == MAX_IN_FLIGHT, "pushed past the in-flight limit"
        await socket.send(json.dumps({"type": "ack", "delivery_ids": [d for d, _ in received]}))
        await received_count(MAX_IN_FLIGHT + EXTRA)
        await socket.send(
            json.dumps({"type": "ack", "delivery_ids": [d for d, _ in received[MAX_IN_FLIGHT:]]})
        )
        await asyncio.sleep(1.0)
        assert len(received) == MAX_IN_FLIGHT + EXTRA, "pushed again"  # and nothing twice
        assert not reader.done(), "the socket closed"
        reader.cancel()
    assert [m for _, m in received] == sent
    assert await bob.fetch() == []  # every entry was acked and deleted
    await alice.close()
    await bob.close()


async def test_the_stream_turns_down_per_message_compression(server: ServerProcess, tmp_path: Path) -> None:
    """Pushes are base64 ciphertext: deflating each frame costs server CPU per delivery for little gain, so
    a client offering permessage-deflate (as `websockets` does by default) gets no extension."""
    bob = await register(server.url, tmp_path, "bob")
    async with websockets.connect(
        server.url.replace("http", "ws") + "/v1/stream",
        additional_headers={"Authorization": f"Bearer {bob.store.get_secret('credential')}"},
    ) as socket:
        assert socket.request is not None and "permessage-deflate" in socket.request.headers.get(
            "Sec-WebSocket-Extensions", ""
        )
        assert socket.response is not None
        assert socket.response.headers.get("Sec-WebSocket-Extensions") is None

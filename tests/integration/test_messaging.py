"""1:1 messaging through a real server process, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from helpers import register, texts

from vigil.client.client import MessageEvent


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
    await alice.close()
    await bob.close()

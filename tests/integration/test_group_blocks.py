"""Blocking someone hides their messages in shared groups on the blocker's devices (through a real
server, real Megolm): not handed to the app, not stored; other members still see them; after an unblock
their new messages show and the hidden ones stay hidden."""

from __future__ import annotations

from pathlib import Path

from helpers import PASSPHRASE, register

from vigil.client.client import Client
from vigil.client.events import Event, MessageEvent
from vigil.protocol.group_wire import group_conversation


def _texts(events: list[Event], group_id: str) -> list[str]:
    conversation = group_conversation(group_id)
    return [e.text for e in events if isinstance(e, MessageEvent) and e.conversation == conversation]


async def test_a_blocked_members_group_messages_are_hidden_from_the_blocker(server, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    carol = await register(server.url, tmp_path, "carol")
    group = (await alice.groups.create([bob.username, carol.username])).group_id
    await bob.groups.send_text(group, "before the block")
    assert _texts(await carol.fetch(), group) == ["before the block"]
    await alice.fetch()

    await carol.block(bob.username)
    await bob.groups.send_text(group, "carol should not see this")
    await alice.groups.send_text(group, "alice still talks")
    assert _texts(await carol.fetch(), group) == ["alice still talks"]
    assert _texts(await alice.fetch(), group) == ["carol should not see this"]  # only the blocker hides it
    assert [r["payload"]["body"] for r in carol.history(group_conversation(group))] == [  # type: ignore[index]
        "before the block",
        "alice still talks",
    ]

    await carol.unblock(bob.username)
    await bob.groups.send_text(group, "after the unblock")
    assert _texts(await carol.fetch(), group) == ["after the unblock"]  # the hidden one stays hidden
    for client in (alice, bob, carol):
        await client.close()


async def test_a_block_made_on_another_device_applies_from_the_next_session(server, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    carol = await register(server.url, tmp_path, "carol")
    group = (await alice.groups.create([bob.username, carol.username])).group_id
    await carol.fetch()
    await carol.close()
    # The account blocks bob elsewhere (the server's list); carol's device learns it when it next opens.
    reopened = await Client.open(tmp_path / f"{carol.username}.db", PASSPHRASE)
    await reopened.transport.block(bob.username)
    await bob.groups.send_text(group, "hidden on every device of the blocker")
    await alice.groups.send_text(group, "visible")
    assert _texts(await reopened.fetch(), group) == ["visible"]
    for client in (alice, bob, reopened):
        await client.close()

"""Encrypted groups through a real server with real Olm + Megolm, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import httpx
import pytest
from helpers import PASSPHRASE, register, unique

from vigil.client.client import Client
from vigil.client.events import Event, GroupUpdated, MessageEvent, RejectedDelivery
from vigil.errors import NotFoundError, PermissionDenied
from vigil.protocol.group_wire import group_conversation, unpack_group_ciphertext
from vigil.protocol.wire import MEGOLM_MESSAGE_TYPE, Delivery, MessageKind


def group_texts(events: list[Event], group_id: str) -> list[str]:
    return [
        e.text
        for e in events
        if isinstance(e, MessageEvent) and e.conversation == group_conversation(group_id)
    ]


async def pending_group_deliveries(client: Client) -> list[Delivery]:
    """The group messages waiting in the device's queue, read without acknowledging them."""
    batch = await client.transport.fetch()
    return [d for d in batch.messages if d.type == MEGOLM_MESSAGE_TYPE]


async def test_five_member_group_removal_and_late_joiner(server, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    others = [await register(server.url, tmp_path, name) for name in ("bob", "carol", "dave", "erin")]
    bob, carol, dave, erin = others
    info = await alice.groups.create([c.username for c in others], name="Book club", topic="June")
    group = info.group_id
    assert {m.username for m in info.members} == {alice.username, *(c.username for c in others)}
    sent = await alice.groups.send_text(group, "hello group")
    assert sent.devices == 4
    for member in others:
        events = await member.fetch()
        assert group_texts(events, group) == ["hello group"]
        updates = [e for e in events if isinstance(e, GroupUpdated)]
        assert [(u.name, u.topic, u.by) for u in updates] == [("Book club", "June", alice.username)]
        assert not [e for e in events if isinstance(e, RejectedDelivery)]
    await bob.groups.send_text(group, "hi from bob")
    for member in (alice, carol, dave, erin):
        assert group_texts(await member.fetch(), group) == ["hi from bob"]

    # Late joiner: frank is added after "before frank"; he can never read it.
    await alice.groups.send_text(group, "before frank")
    before_frank = (await pending_group_deliveries(carol))[0]
    frank = await register(server.url, tmp_path, "frank")
    await alice.groups.add_member(group, frank.username)
    await alice.groups.send_text(group, "welcome frank")
    frank_events = await frank.fetch()
    assert group_texts(frank_events, group) == ["welcome frank"]
    late = await frank.groups.open(before_frank)
    assert isinstance(late, RejectedDelivery)
    assert group_texts(await carol.fetch(), group) == ["before frank", "welcome frank"]

    # Removal: erin holds the current session key, so alice must rotate before the next message.
    old_session = unpack_group_ciphertext(base64.b64decode(before_frank.body)).session_id
    assert group_texts(await erin.fetch(), group) == ["before frank", "welcome frank"]
    await alice.groups.remove_member(group, erin.username)
    await alice.groups.send_text(group, "erin is gone")
    assert await erin.fetch() == []  # not queued for her at all
    after = (await pending_group_deliveries(dave))[-1]
    assert unpack_group_ciphertext(base64.b64decode(after.body)).session_id != old_session
    # ... and even holding the ciphertext she cannot decrypt it.
    assert isinstance(await erin.groups.open(after), RejectedDelivery)
    for member in (bob, carol, dave, frank):
        assert group_texts(await member.fetch(), group)[-1] == "erin is gone"
    # A member who left cannot send any more.
    with pytest.raises(NotFoundError):
        await erin.groups.send_text(group, "still here?")
    # History holds the group conversation on each device.
    assert [r["payload"]["body"] for r in dave.history(group_conversation(group))][-1] == "erin is gone"


async def test_group_fanout_stores_one_ciphertext_per_device_and_reaches_own_devices(
    server, tmp_path: Path
) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    carol = await register(server.url, tmp_path, "carol")
    bob_phone = await bob.link_device(tmp_path / "bob-phone.db", PASSPHRASE)
    alice_laptop = await alice.link_device(tmp_path / "alice-laptop.db", PASSPHRASE)
    group = (await alice.groups.create([bob.username, carol.username])).group_id
    sent = await alice.groups.send_text(group, "one ciphertext for all")
    assert sent.devices == 4  # bob x2, carol, alice's laptop
    deliveries = []
    for device in (bob, bob_phone, carol, alice_laptop):
        deliveries += await pending_group_deliveries(device)
    assert len(deliveries) == 4
    assert len({d.body for d in deliveries}) == 1  # the very same bytes in every queue entry
    assert len({(d.message_id, d.commitment, d.franking_tag) for d in deliveries}) == 1
    assert {d.conversation for d in deliveries} == {group_conversation(group)}
    for device in (bob, bob_phone, carol):
        assert group_texts(await device.fetch(), group) == ["one ciphertext for all"]
    copy = [e for e in await alice_laptop.fetch() if isinstance(e, MessageEvent)]
    assert [(e.text, e.outgoing) for e in copy] == [("one ciphertext for all", True)]
    # An image in the group works as in 1:1: the blob is committed to inside the franked message.
    await carol.groups.send_attachment(group, b"\x89PNG group picture", "image/png", name="g.png")
    images = [e for e in await bob_phone.fetch() if isinstance(e, MessageEvent)]
    assert images[0].kind is MessageKind.IMAGE and images[0].attachment is not None
    assert images[0].attachment.data == b"\x89PNG group picture"


async def test_group_bad_input_is_4xx_and_changes_nothing(server, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    carol = await register(server.url, tmp_path, "carol")
    mallory = await register(server.url, tmp_path, "mallory")
    with pytest.raises(NotFoundError):
        await alice.groups.create([bob.username, unique("nobody")])
    assert (await alice.groups.list_groups()).groups == []
    group = (await alice.groups.create([bob.username, carol.username])).group_id
    members = await alice.groups.info(group)
    with pytest.raises(NotFoundError):
        await alice.groups.add_member(group, unique("nobody"))
    with pytest.raises(PermissionDenied):
        await bob.groups.remove_member(group, carol.username)
    with pytest.raises(PermissionDenied):
        await bob.groups.add_member(group, mallory.username)
    with pytest.raises(NotFoundError):
        await mallory.groups.info(group)
    with pytest.raises(NotFoundError):
        await mallory.groups.remove_member(group, bob.username)
    assert await alice.groups.info(group) == members

    headers = {"Authorization": f"Bearer {mallory.store.get_secret('credential')}"}
    body = {
        "id": str(uuid.uuid4()),
        "kind": "text",
        "commitment": base64.b64encode(bytes(32)).decode(),
        "body": base64.b64encode(b"\x01" + bytes(32) + b"not megolm").decode(),
        "devices": [],
    }
    async with httpx.AsyncClient(base_url=server.url) as http:
        outsider = await http.post(f"/v1/groups/{group}/messages", json=body, headers=headers)
        assert outsider.status_code == 404 and outsider.json()["error"] == "not_found"
        bob_headers = {"Authorization": f"Bearer {bob.store.get_secret('credential')}"}
        stale = await http.post(f"/v1/groups/{group}/messages", json=body, headers=bob_headers)
        assert stale.status_code == 409 and stale.json()["error"] == "stale_devices"
        assert set(stale.json()["missing"]) == {alice.username, carol.username}
        bad_id = await http.get("/v1/groups/not-a-group/devices", headers=headers)
        assert bad_id.status_code == 422 and set(bad_id.json()) == {"error", "detail"}
        unframed = await http.post(
            f"/v1/groups/{group}/messages",
            json={**body, "body": base64.b64encode(b"xx").decode()},
            headers=bob_headers,
        )
        assert unframed.status_code == 422
        keys_to_outsider = await http.post(
            "/v1/to-device",
            json={
                "id": str(uuid.uuid4()),
                "conversation": group_conversation(group),
                "messages": [
                    {
                        "username": mallory.username,
                        "device_id": mallory.device_id,
                        "type": 0,
                        "body": "AAAAAAAA",
                    }
                ],
            },
            headers=bob_headers,
        )
        assert keys_to_outsider.status_code == 400
    for member in (alice, bob, carol):
        assert [e for e in await member.fetch() if isinstance(e, MessageEvent)] == []
    # Leaving works and hands admin on when the last admin goes.
    await alice.groups.leave(group)
    after = await bob.groups.info(group)
    assert [(m.username, m.role.value) for m in after.members] == [
        (bob.username, "admin"),
        (carol.username, "member"),
    ] or {m.role.value for m in after.members} == {"admin", "member"}

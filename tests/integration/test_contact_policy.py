"""The contact rules on every path that reaches a person, through a real server: `/v1/to-device` runs
the send policy of `/v1/messages`; every refusal that depends on the other person is one neutral answer
(byte for byte); a minor is in a group only with adults they are connected to, whoever joins last."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from pathlib import Path

import httpx
import pytest
from helpers import register
from live_server import ServerProcess

from vigil.client.client import Client
from vigil.errors import PolicyViolation
from vigil.protocol.group_wire import AddMemberRequest, CreateGroupRequest
from vigil.safety.policy import NEUTRAL_REFUSAL

TODAY = dt.date.today()
TEEN_14 = TODAY.replace(year=TODAY.year - 14)
BODY = base64.b64encode(b"not really an olm message").decode()


def _auth(client: Client) -> dict[str, str]:
    return {"Authorization": f"Bearer {client.store.get_secret('credential')}"}


async def _to_device(http: httpx.AsyncClient, sender: Client, target: Client) -> httpx.Response:
    return await http.post(
        "/v1/to-device",
        json={
            "id": str(uuid.uuid4()),
            "conversation": target.username,
            "messages": [
                {"username": target.username, "device_id": target.device_id, "type": 0, "body": BODY}
            ],
        },
        headers=_auth(sender),
    )


async def _send(http: httpx.AsyncClient, sender: Client, target: Client) -> httpx.Response:
    return await http.post(
        "/v1/messages",
        json={
            "id": str(uuid.uuid4()),
            "to": target.username,
            "kind": "text",
            "commitment": base64.b64encode(bytes(32)).decode(),
            "ciphertexts": [{"device_id": target.device_id, "type": 0, "body": BODY}],
        },
        headers=_auth(sender),
    )


async def _contact(http: httpx.AsyncClient, sender: Client, target: Client) -> httpx.Response:
    return await http.post("/v1/contacts/requests", json={"to": target.username}, headers=_auth(sender))


async def test_to_device_runs_the_send_policy(server: ServerProcess, tmp_path: Path) -> None:
    stranger = await register(server.url, tmp_path, "stranger")
    friend = await register(server.url, tmp_path, "friend")
    teen = await register(server.url, tmp_path, "teen", TEEN_14)
    blocker = await register(server.url, tmp_path, "blocker")
    await blocker.block(stranger.username)
    await teen.accept_request((await friend.request_contact(teen.username)).id)
    async with httpx.AsyncClient(base_url=server.url) as http:
        # An unconnected adult, or a blocked account, cannot put anything on the device.
        for target in (teen, blocker):
            refused = await _to_device(http, stranger, target)
            assert refused.status_code == 403, refused.text
            assert refused.json() == {"error": "policy_violation", "detail": NEUTRAL_REFUSAL}
        # Parties that may message each other keep their to-device path (key verification).
        assert (await _to_device(http, friend, teen)).status_code == 202
        assert (await _to_device(http, teen, friend)).status_code == 202
        assert (await _to_device(http, stranger, friend)).status_code == 202
    # Nothing reached the minor from the stranger: only the friend's control message is queued.
    pending = await teen.transport.fetch(limit=50)
    assert {m.sender for m in pending.messages} == {friend.username}
    for client in (stranger, friend, teen, blocker):
        await client.close()


async def test_every_refusal_about_the_other_person_is_the_same_bytes(
    server: ServerProcess, tmp_path: Path
) -> None:
    adult = await register(server.url, tmp_path, "adult")
    friend = await register(server.url, tmp_path, "friend")
    teen = await register(server.url, tmp_path, "teen", TEEN_14)
    blocker = await register(server.url, tmp_path, "blocker")
    await blocker.block(adult.username)
    group = await adult.transport.create_group(CreateGroupRequest(members=[friend.username]))
    async with httpx.AsyncClient(base_url=server.url) as http:
        refusals = [
            await _send(http, adult, teen),  # minor rule
            await _send(http, adult, blocker),  # block
            await _to_device(http, adult, teen),
            await _to_device(http, adult, blocker),
            await _contact(http, adult, blocker),
            await http.post(
                f"/v1/groups/{group.group_id}/members", json={"username": teen.username}, headers=_auth(adult)
            ),
            await http.post(
                f"/v1/groups/{group.group_id}/members",
                json={"username": blocker.username},
                headers=_auth(adult),
            ),
        ]
    assert [r.status_code for r in refusals] == [403] * len(refusals)
    assert len({r.content for r in refusals}) == 1, [r.text for r in refusals]
    assert refusals[0].json() == {"error": "policy_violation", "detail": NEUTRAL_REFUSAL}
    assert b"minor" not in refusals[0].content and b"block" not in refusals[0].content
    for client in (adult, friend, teen, blocker):
        await client.close()


async def test_a_minor_is_in_a_group_only_with_connected_adults(
    server: ServerProcess, tmp_path: Path
) -> None:
    parent = await register(server.url, tmp_path, "parent")
    coach = await register(server.url, tmp_path, "coach")
    teen = await register(server.url, tmp_path, "teen", TEEN_14)
    other_teen = await register(server.url, tmp_path, "teen2", TEEN_14)
    await teen.accept_request((await parent.request_contact(teen.username)).id)

    # The connected parent cannot bring the teen into a group with an adult the teen does not know...
    with pytest.raises(PolicyViolation, match=NEUTRAL_REFUSAL):
        await parent.transport.create_group(CreateGroupRequest(members=[coach.username, teen.username]))
    adults = await parent.transport.create_group(CreateGroupRequest(members=[coach.username]))
    with pytest.raises(PolicyViolation, match=NEUTRAL_REFUSAL):
        await parent.transport.add_group_member(adults.group_id, AddMemberRequest(username=teen.username))
    # ...nor add that adult later to a group that already holds the teen.
    family = await parent.transport.create_group(CreateGroupRequest(members=[teen.username]))
    with pytest.raises(PolicyViolation, match=NEUTRAL_REFUSAL):
        await parent.transport.add_group_member(family.group_id, AddMemberRequest(username=coach.username))
    # A minor cannot bring an unconnected adult in either; minors among themselves need no connection.
    with pytest.raises(PolicyViolation, match=NEUTRAL_REFUSAL):
        await teen.transport.create_group(CreateGroupRequest(members=[coach.username]))
    await teen.transport.create_group(CreateGroupRequest(members=[other_teen.username]))

    # The teen's consent is accepting the adult's contact request; then both adds go through.
    await teen.accept_request((await coach.request_contact(teen.username)).id)
    info = await parent.transport.add_group_member(family.group_id, AddMemberRequest(username=coach.username))
    assert {m.username for m in info.members} == {parent.username, teen.username, coach.username}
    info = await parent.transport.add_group_member(adults.group_id, AddMemberRequest(username=teen.username))
    assert teen.username in {m.username for m in info.members}
    for client in (parent, coach, teen, other_teen):
        await client.close()

"""Account standing in groups, through a real server with real Olm + Megolm, on SQLite and PostgreSQL.

A restricted account (a reviewer's decision or the risk layer's, both the `account_standing` row the
tests write here) contacts no minor, so: it posts nothing, not even keys, to a group holding a minor
however long it has been a member (single sends and concurrent, batched ones), with the answer of a
refused direct send; nobody puts it into a group with a minor, by add, create or link, and no minor is
put into a group where it is. Adds of one group are serialised as link joins are, so two concurrent
adds cannot both pass the minors rule."""

from __future__ import annotations

import asyncio
import base64
import uuid
from pathlib import Path

import httpx
import pytest
from helpers import TEEN_14, auth_headers, connect, group_texts, register
from live_server import ServerProcess
from safety_helpers import set_standing

from vigil.errors import PolicyViolation
from vigil.protocol.group_wire import group_conversation, pack_group_ciphertext
from vigil.protocol.megolm import MegolmCiphertext
from vigil.safety.policy import NEUTRAL_REFUSAL, Standing

# Framed like a real one; never decrypted (the standing refuses the send before anything reads it).
_UNREAD_CIPHERTEXT = MegolmCiphertext(base64.b64encode(bytes(32)).decode().rstrip("="), bytes(48))
REFUSED = {"error": "policy_violation", "detail": NEUTRAL_REFUSAL}


def _raw_group_send() -> dict[str, object]:
    """A well-formed group send (the standing check comes before the device list and the ciphertext)."""
    return {
        "id": str(uuid.uuid4()),
        "kind": "text",
        "commitment": base64.b64encode(bytes(32)).decode(),
        "body": base64.b64encode(pack_group_ciphertext(_UNREAD_CIPHERTEXT)).decode(),
        "devices": [],
    }


async def test_a_member_restricted_after_joining_posts_nothing_to_a_group_with_a_minor(
    server: ServerProcess, tmp_path: Path
) -> None:
    admin = await register(server.url, tmp_path, "admin")
    member = await register(server.url, tmp_path, "member")
    teen = await register(server.url, tmp_path, "teen", TEEN_14)
    for adult in (admin, member):
        await connect(adult, teen)
    with_teen = (await admin.groups.create([member.username, teen.username])).group_id
    adults_only = (await admin.groups.create([member.username])).group_id
    await member.groups.send_text(with_teen, "before")  # the member's session key is shared now
    await member.groups.send_text(adults_only, "adults before")
    assert group_texts(await teen.fetch(), with_teen) == ["before"]

    await set_standing(server, member, Standing.RESTRICTED)
    with pytest.raises(PolicyViolation, match=f"^{NEUTRAL_REFUSAL}$"):
        await member.groups.send_text(with_teen, "after")
    # The wire answer is byte for byte a refused direct send's (a restricted sender to a minor).
    async with httpx.AsyncClient(base_url=server.url, headers=auth_headers(member)) as http:
        direct = await http.post(
            "/v1/messages",
            json={
                "id": str(uuid.uuid4()),
                "to": teen.username,
                "kind": "text",
                "commitment": base64.b64encode(bytes(32)).decode(),
                "ciphertexts": [
                    {"device_id": teen.device_id, "type": 0, "body": base64.b64encode(b"not read").decode()}
                ],
            },
        )
        grouped = await http.post(f"/v1/groups/{with_teen}/messages", json=_raw_group_send())
        # Nor keys: a group's to-device traffic is a group send too.
        keys = await http.post(
            "/v1/to-device",
            json={
                "id": str(uuid.uuid4()),
                "conversation": group_conversation(with_teen),
                "messages": [
                    {
                        "device_id": teen.device_id,
                        "username": teen.username,
                        "type": 0,
                        "body": base64.b64encode(b"not read").decode(),
                    }
                ],
            },
        )
    assert (direct.status_code, direct.json()) == (403, REFUSED)
    assert (grouped.status_code, grouped.json()) == (403, REFUSED)
    assert (keys.status_code, keys.json()) == (403, REFUSED)

    # Batched with other senders' messages (one group commit), the restricted member's sends fail alone.
    outcomes = await asyncio.gather(
        *(member.groups.send_text(with_teen, f"restricted {i}") for i in range(3)),
        *(admin.groups.send_text(with_teen, f"admin {i}") for i in range(3)),
        return_exceptions=True,
    )
    assert all(isinstance(o, PolicyViolation) and str(o) == NEUTRAL_REFUSAL for o in outcomes[:3]), outcomes
    assert not any(isinstance(o, BaseException) for o in outcomes[3:]), outcomes
    assert sorted(group_texts(await teen.fetch(), with_teen)) == ["admin 0", "admin 1", "admin 2"]

    # A group of adults is a conversation the member is already in: restricted, it still posts there.
    await member.groups.send_text(adults_only, "adults after")
    assert group_texts(await admin.fetch(), adults_only) == ["adults before", "adults after"]

    # Lifted, the member posts to the minor's group again.
    await set_standing(server, member, Standing.ACTIVE)
    await member.groups.send_text(with_teen, "lifted")
    assert group_texts(await teen.fetch(), with_teen) == ["lifted"]
    for client in (admin, member, teen):
        await client.close()


async def test_nobody_puts_a_restricted_account_and_a_minor_in_one_group(
    server: ServerProcess, tmp_path: Path
) -> None:
    admin = await register(server.url, tmp_path, "admin")
    restricted = await register(server.url, tmp_path, "restricted")
    teen = await register(server.url, tmp_path, "teen", TEEN_14)
    other_teen = await register(server.url, tmp_path, "otherteen", TEEN_14)
    # Connected to every adult, so only standing can refuse.
    for minor in (teen, other_teen):
        for adult in (admin, restricted):
            await connect(adult, minor)
    with_teen = (await admin.groups.create([teen.username])).group_id
    with_restricted = (await admin.groups.create([restricted.username])).group_id
    teen_link = await admin.groups.create_invite_link(with_restricted)
    await set_standing(server, restricted, Standing.RESTRICTED)

    # An active admin adds no restricted account to a group with a minor, nor creates one with both.
    with pytest.raises(PolicyViolation, match=f"^{NEUTRAL_REFUSAL}$"):
        await admin.groups.add_member(with_teen, restricted.username)
    with pytest.raises(PolicyViolation, match=f"^{NEUTRAL_REFUSAL}$"):
        await admin.groups.create([teen.username, restricted.username])
    with pytest.raises(PolicyViolation, match=f"^{NEUTRAL_REFUSAL}$"):
        await admin.groups.create([restricted.username, teen.username])
    # Nor a minor to a group holding a restricted account, by add or by link.
    with pytest.raises(PolicyViolation, match=f"^{NEUTRAL_REFUSAL}$"):
        await admin.groups.add_member(with_restricted, teen.username)
    with pytest.raises(PolicyViolation, match=f"^{NEUTRAL_REFUSAL}$"):
        await other_teen.groups.join(teen_link.token)
    assert {m.username for m in (await admin.groups.info(with_teen)).members} == {
        admin.username,
        teen.username,
    }
    assert {m.username for m in (await admin.groups.info(with_restricted)).members} == {
        admin.username,
        restricted.username,
    }

    # Adults only: an active admin's add is the admin's new conversation, as an active adult may message
    # a restricted one; the restricted account still joins nothing by link itself.
    adults = (await admin.groups.create([])).group_id
    await admin.groups.add_member(adults, restricted.username)

    # Lifted, the same adds and the link go through.
    await set_standing(server, restricted, Standing.ACTIVE)
    await admin.groups.add_member(with_teen, restricted.username)
    await other_teen.groups.join(teen_link.token)
    for client in (admin, restricted, teen, other_teen):
        await client.close()


async def test_concurrent_adds_of_one_group_are_serialised(server: ServerProcess, tmp_path: Path) -> None:
    """Each add alone passes: the minor is connected to the admin, the adult joins a group without
    minors. Together they would put the minor with an adult unknown to them; serialised, the second
    sees the first and is refused, whichever wins."""
    admin = await register(server.url, tmp_path, "admin")
    rounds = 6
    teens = [await register(server.url, tmp_path, f"teen{i}", TEEN_14) for i in range(rounds)]
    strangers = [await register(server.url, tmp_path, f"stranger{i}") for i in range(rounds)]
    for teen in teens:
        await connect(admin, teen)
    async with (
        httpx.AsyncClient(base_url=server.url, headers=auth_headers(admin), timeout=60) as first,
        httpx.AsyncClient(base_url=server.url, headers=auth_headers(admin), timeout=60) as second,
    ):
        for teen, stranger in zip(teens, strangers, strict=True):
            group = (await admin.groups.create([])).group_id
            answers = await asyncio.gather(
                first.post(f"/v1/groups/{group}/members", json={"username": teen.username}),
                second.post(f"/v1/groups/{group}/members", json={"username": stranger.username}),
            )
            statuses = sorted(a.status_code for a in answers)
            assert statuses == [200, 403], [(a.status_code, a.text) for a in answers]
            refused = next(a for a in answers if a.status_code == 403)
            assert refused.json() == REFUSED
            members = {m.username for m in (await admin.groups.info(group)).members}
            assert admin.username in members and len(members) == 2
            assert not {teen.username, stranger.username} <= members
    for client in (admin, *teens, *strangers):
        await client.close()

"""Minors' protective defaults through a real server: contact requests, connections, the daily request
limit, group adds, and signed safety notices (verification and tamper rejection)."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import httpx
import pytest
from helpers import register, texts
from live_server import ServerProcess, running_server

from vigil.client.contacts import verify_notices
from vigil.errors import ConflictError, PolicyViolation, TamperError
from vigil.protocol.contacts import NoticeAction, SignedNotice
from vigil.protocol.group_wire import CreateGroupRequest
from vigil.protocol.reports import ReportReason
from vigil.safety.policy import NEUTRAL_REFUSAL

TODAY = dt.date.today()
TEEN_14 = TODAY.replace(year=TODAY.year - 14)
TEEN_17 = TODAY.replace(year=TODAY.year - 17)


async def test_stranger_adult_dm_to_a_minor_is_refused_until_a_request_is_accepted(
    server: ServerProcess, tmp_path: Path
) -> None:
    adult = await register(server.url, tmp_path, "adult")
    teen = await register(server.url, tmp_path, "teen", TEEN_14)
    with pytest.raises(PolicyViolation, match=f"^{NEUTRAL_REFUSAL}$"):
        await adult.send_text(teen.username, "hi, want to chat?")
    # The refusal is a clear 403 JSON error on the wire.
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.post(
            "/v1/contacts/requests",
            json={"to": teen.username, "text": "free text is not allowed"},
            headers={"Authorization": f"Bearer {adult.store.get_secret('credential')}"},
        )
        assert response.status_code == 422 and set(response.json()) == {"error", "detail"}

    request = await adult.request_contact(teen.username)
    assert request.state == "pending" and request.requester == adult.username
    with pytest.raises(ConflictError):
        await adult.request_contact(teen.username)
    pending = await teen.contact_requests()
    assert [r.id for r in pending.incoming] == [request.id]

    # The minor sees a verified safety notice about the unconnected adult, with block and report.
    [notice] = await teen.safety_notices()
    assert notice.subject == adult.username and notice.kind == "unconnected_adult"
    assert set(notice.actions) == {NoticeAction.BLOCK, NoticeAction.REPORT}

    accepted = await teen.accept_request(request.id)
    assert accepted.state == "accepted"
    assert await teen.contacts() == [adult.username]
    await adult.send_text(teen.username, "thanks for accepting")
    await teen.send_text(adult.username, "hello back")
    assert texts(await teen.fetch()) == ["thanks for accepting"]
    assert texts(await adult.fetch()) == ["hello back"]
    for client in (adult, teen):
        await client.close()


async def test_a_minor_can_ignore_block_or_report_a_request(server: ServerProcess, tmp_path: Path) -> None:
    teen = await register(server.url, tmp_path, "teen", TEEN_17)
    ignored, blocked, reported = [await register(server.url, tmp_path, n) for n in ("ign", "blk", "rep")]
    ids = {c.username: (await c.request_contact(teen.username)).id for c in (ignored, blocked, reported)}
    assert (await teen.ignore_request(ids[ignored.username])).state == "ignored"
    assert (await teen.block_request(ids[blocked.username])).state == "blocked"
    with pytest.raises(PolicyViolation, match=f"^{NEUTRAL_REFUSAL}$"):
        await blocked.request_contact(teen.username)
    accepted = await teen.report_account(reported.username, ReportReason.GROOMING)
    assert accepted.reported == reported.username and accepted.blocked
    with pytest.raises(PolicyViolation):
        await reported.send_text(teen.username, "why did you block me")
    with pytest.raises(ConflictError):
        await teen.accept_request(ids[ignored.username])
    for client in (teen, ignored, blocked, reported):
        await client.close()


async def test_new_accounts_have_a_daily_contact_request_limit(backend: str, tmp_path: Path) -> None:
    with running_server(backend, tmp_path, {"VIGIL_CONTACT_REQUESTS_PER_DAY_NEW": "2"}) as process:
        sender = await register(process.url, tmp_path, "eager")
        targets = [await register(process.url, tmp_path, f"t{i}", TEEN_14) for i in range(3)]
        await sender.request_contact(targets[0].username)
        await sender.request_contact(targets[1].username)
        with pytest.raises(PolicyViolation, match="at most 2 contact requests a day"):
            await sender.request_contact(targets[2].username)
        for client in (sender, *targets):
            await client.close()


async def test_unconnected_adult_cannot_add_a_minor_to_a_group(server: ServerProcess, tmp_path: Path) -> None:
    adult = await register(server.url, tmp_path, "adult")
    friend = await register(server.url, tmp_path, "friend")
    teen = await register(server.url, tmp_path, "teen", TEEN_14)
    with pytest.raises(PolicyViolation, match=f"^{NEUTRAL_REFUSAL}$"):
        await adult.transport.create_group(CreateGroupRequest(members=[friend.username, teen.username]))
    group = await adult.transport.create_group(CreateGroupRequest(members=[friend.username]))
    from vigil.protocol.group_wire import AddMemberRequest

    with pytest.raises(PolicyViolation, match=f"^{NEUTRAL_REFUSAL}$"):
        await adult.transport.add_group_member(group.group_id, AddMemberRequest(username=teen.username))
    request = await adult.request_contact(teen.username)
    await teen.accept_request(request.id)
    # Connected to the adder is not enough: the group holds another adult the teen does not know.
    with pytest.raises(PolicyViolation, match=f"^{NEUTRAL_REFUSAL}$"):
        await adult.transport.add_group_member(group.group_id, AddMemberRequest(username=teen.username))
    await teen.accept_request((await friend.request_contact(teen.username)).id)
    info = await adult.transport.add_group_member(group.group_id, AddMemberRequest(username=teen.username))
    assert teen.username in [m.username for m in info.members]
    for client in (adult, friend, teen):
        await client.close()


async def test_forged_or_tampered_notices_are_rejected(server: ServerProcess, tmp_path: Path) -> None:
    adult = await register(server.url, tmp_path, "adult")
    teen = await register(server.url, tmp_path, "teen", TEEN_14)
    other = await register(server.url, tmp_path, "other", TEEN_14)
    await adult.request_contact(teen.username)
    assert len(await teen.safety_notices()) == 1
    signed = (await teen.transport.safety_notices()).notices[0]
    key = bytes.fromhex(teen.store.get_secret("safety_notice_key") or "")

    payload = bytearray(base64.b64decode(signed.payload))
    payload[payload.index(b"unconnected")] ^= 0x01  # one flipped bit in the text
    tampered = SignedNotice(payload=base64.b64encode(bytes(payload)).decode(), signature=signed.signature)
    signature = bytearray(base64.b64decode(signed.signature))
    signature[0] ^= 0x80
    bad_sig = SignedNotice(payload=signed.payload, signature=base64.b64encode(bytes(signature)).decode())
    shown, rejected = verify_notices(key, [tampered, bad_sig, signed], teen.username)
    assert [n.subject for n in shown] == [adult.username] and len(rejected) == 2
    # A genuine notice for someone else is not shown either.
    shown, rejected = verify_notices(key, [signed], other.username)
    assert shown == [] and "another account" in rejected[0]
    # A forger without the server's notice key cannot make one the client accepts.
    from vigil.protocol.contacts import SafetyNoticeBody
    from vigil.protocol.notices import sign_notice

    forged = sign_notice(
        b"\x07" * 32,
        SafetyNoticeBody(
            id=999,
            recipient=teen.username,
            subject="trusted_admin",
            kind="elevated_risk",
            text="add me",
            actions=[NoticeAction.BLOCK],
            created_at_ms=0,
        ),
    )
    assert verify_notices(key, [forged], teen.username)[0] == []
    with pytest.raises(TamperError):
        from vigil.protocol.notices import verify_notice

        verify_notice(key, forged, recipient=teen.username)
    for client in (adult, teen, other):
        await client.close()

"""Reports of group messages through a real server (SQLite and PostgreSQL): verified from the server's
franking tag and the group's membership history, also after the server deleted its message records."""

from __future__ import annotations

import hashlib
import time
import uuid
from pathlib import Path

from helpers import register, unique
from safety_helpers import matchable_pictures, server_context
from sqlalchemy import delete, select

from vigil.client.client import Client
from vigil.client.events import ImageWithheld, MessageEvent
from vigil.client.reporting import build_report
from vigil.protocol.encoding import b64encode
from vigil.protocol.group_wire import group_conversation
from vigil.protocol.reports import ReportReason
from vigil.protocol.vouchers import (
    FrankingProof,
    VoucherContent,
    VoucherDirection,
    VoucherMatch,
    VoucherSubmission,
    seal_voucher,
)
from vigil.protocol.wire import InnerPayload
from vigil.safety.hashing.pdq import hash_image
from vigil.server.db.messaging import MessageRow, QueueRow
from vigil.server.hashlist_keys import load_signing_key, load_voucher_keypair, load_voucher_public_key
from vigil.server.services import cases, hashlist, vouchers

PICTURE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


def _record(client: Client, conversation: str, message_id: str) -> dict:
    [record] = [r for r in client.history(conversation, 100) if r["payload"]["message_id"] == message_id]
    return record


async def _verdict(reporter: Client, record: dict, attachment: bytes | None = None) -> bool:
    attachments = {record["payload"]["message_id"]: attachment} if attachment is not None else None
    request = build_report([record], ReportReason.HARASSMENT, attachments=attachments)
    return (await reporter.transport.report(request)).verified[0]


async def test_group_message_reports_verify_by_membership_at_the_messages_time(
    server, tmp_path: Path
) -> None:
    alice = await register(server.url, tmp_path, "alice")
    mallory = await register(server.url, tmp_path, "mallory")
    bob = await register(server.url, tmp_path, "bob")
    dave = await register(server.url, tmp_path, "dave")
    carol = await register(server.url, tmp_path, "carol")
    info = await alice.groups.create([mallory.username, bob.username, dave.username])
    group = group_conversation(info.group_id)
    await mallory.groups.send_text(info.group_id, "hello all")
    await dave.groups.leave(info.group_id)  # dave leaves before the message he will try to report
    await mallory.groups.send_attachment(info.group_id, PICTURE, "image/png", name="x.png", caption="look")
    await mallory.groups.send_text(info.group_id, "you will regret this")
    await alice.groups.add_member(info.group_id, carol.username)  # carol joins after it
    events = [e for e in await bob.fetch() if isinstance(e, MessageEvent)]
    assert [e.text for e in events] == ["hello all", "look", "you will regret this"]
    await dave.fetch()
    await carol.fetch()
    threat = events[-1]

    # The server deletes delivered messages (retention): verification must not need its records.
    async with server_context(server.data_dir, server.database_url) as ctx:
        async with ctx.sessions() as session, session.begin():
            ids = select(MessageRow.id).where(MessageRow.conversation == group)
            await session.execute(delete(QueueRow).where(QueueRow.message_id.in_(ids)))
            await session.execute(delete(MessageRow).where(MessageRow.conversation == group))
        async with ctx.sessions() as session:
            assert (
                await session.scalars(select(MessageRow).where(MessageRow.conversation == group))
            ).all() == []

    accepted = await bob.report(threat, ReportReason.HARASSMENT, context=2)
    assert accepted.reported == mallory.username
    assert accepted.verified == [True, True, True]  # the threat, the image with its bytes, the greeting
    async with server_context(server.data_dir, server.database_url) as ctx:
        detail = await cases.case_detail(ctx, "reviewer:test", accepted.case_id, frozenset())
        [report] = [r for r in detail.reports if r.id == accepted.report_id]
        assert [
            (i.text, i.verified, i.conversation) for i in sorted(report.items, key=lambda i: i.position)
        ] == [
            ("you will regret this", True, group),
            ("look", True, group),
            ("hello all", True, group),
        ]
        assert [i.has_image for i in sorted(report.items, key=lambda i: i.position)] == [False, True, False]

    record = _record(bob, group, threat.message_id)
    assert await _verdict(bob, record) is True
    # a non-member reporter: carol joined after the message, dave left before it, erin was never in it
    assert await _verdict(carol, record) is False
    assert await _verdict(dave, record) is False
    # forgeries by a member: altered text, another sender
    altered = {**record, "payload": {**record["payload"], "body": "you will love this"}}
    assert await _verdict(bob, altered) is False
    relabelled = {**record, "payload": {**record["payload"], "sender": alice.username}}
    assert await _verdict(bob, relabelled) is False
    # the image without its bytes, or with other bytes, does not verify; with them it does
    image = _record(bob, group, events[1].message_id)
    assert await _verdict(bob, image, PICTURE) is True
    assert await _verdict(bob, image, PICTURE[:-1] + b"\x00") is False
    assert await _verdict(bob, image) is False


async def test_a_received_group_image_voucher_verifies_only_for_a_member_at_the_messages_time(
    server, tmp_path: Path
) -> None:
    [known] = matchable_pictures(1, seed=5)
    async with server_context(server.data_dir, server.database_url) as team:
        bank = unique("bank")
        await hashlist.create_bank(team, bank)
        line = f"pdq {hash_image(known).hash.hex()}"
        assert await hashlist.import_entries(team, bank, line, "threatexchange") == 1
        await hashlist.publish(
            team,
            load_signing_key(team.settings),
            load_voucher_public_key(team.settings),
            issued_at=int(time.time()),
        )
    sender = await register(server.url, tmp_path, "sender")  # a modified client: it never matches
    bob, dave, carol = [await register(server.url, tmp_path, n) for n in ("bob", "dave", "carol")]
    assert (await bob.safety.ensure_authority()) is not None  # pinned as the server names it
    await bob.safety.sync()
    info = await sender.groups.create([bob.username, dave.username])
    await dave.groups.leave(info.group_id)
    await sender.groups.send_attachment(info.group_id, known, "image/png", name="k.png")
    [withheld] = [e for e in await bob.fetch() if isinstance(e, ImageWithheld)]
    assert withheld.voucher_id is not None

    # dave (left before the message) and carol (never a member) replay bob's franking proof as their own
    # received-image vouchers: the tag verifies, the party check does not.
    group = group_conversation(info.group_id)
    record = _record(bob, group, withheld.message_id)
    state = bob.safety.state
    assert state is not None
    hashed = hash_image(known)
    content = VoucherContent(
        direction=VoucherDirection.INCOMING,
        image=b64encode(known),
        mime="image/png",
        image_sha256=b64encode(hashlib.sha256(known).digest()),
        pdq=hashed.hash.hex(),
        quality=hashed.quality,
        match=VoucherMatch(bank=bank, entry_hash=hashed.hash.hex(), distance=0, dihedral=0),
        list_version=state.version,
        franking=FrankingProof(
            payload=InnerPayload.model_validate(record["payload"]),
            commitment=record["commitment"],
            server_tag=record["franking_tag"],
            server_ts_ms=record["server_ts_ms"],
            conversation=group,
        ),
    )
    async with server_context(server.data_dir, server.database_url) as team:
        voucher_key = load_voucher_public_key(team.settings)
        for replayer in (dave, carol):
            sealed = seal_voucher(voucher_key, content.model_dump_json(exclude_none=True).encode())
            await replayer.transport.submit_voucher(VoucherSubmission.of(str(uuid.uuid4()), sealed))
        opened = await vouchers.open_pending_vouchers(team, load_voucher_keypair(team.settings))
        assert opened.failed == []
        found = {c.reporter: c for c in await vouchers.list_image_cases(team) if c.subject == sender.username}
    assert found[bob.username].verified, found[bob.username].verification
    for replayer in (dave, carol):
        case = found[replayer.username]
        assert not case.verified
        assert case.verification == "the reporter was not a member of the group at the message's time"

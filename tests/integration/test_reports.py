"""Reports, blocks and enforcement through a real server with real encryption, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from pathlib import Path

import pytest
from helpers import register, texts
from safety_helpers import server_context

from vigil.client.events import MessageEvent
from vigil.client.reporting import build_report, select_records
from vigil.errors import PolicyViolation, ValidationError
from vigil.protocol.reports import ReportReason
from vigil.safety.policy import NEUTRAL_REFUSAL
from vigil.server.db.accounts import UserRepository
from vigil.server.db.cases import QueueFilter
from vigil.server.db.messaging import MessageRepository
from vigil.server.services import cases, policies, reports, retention
from vigil.server.services.audit import recent_entries, verify_chain
from vigil.server.services.cases import CaseAction

TEEN = dt.date.today().replace(year=dt.date.today().year - 14)


@pytest.mark.fresh_server  # its case is the whole queue
async def test_honest_report_with_context_verifies_and_opens_a_case(server, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    await alice.send_text(bob.username, "hey")
    await bob.fetch()
    await bob.send_text(
        alice.username, "who is this?"
    )  # bob's own message: verified from the tag his send kept
    for text in ("a friend", "send me a photo", "or else"):
        await alice.send_text(bob.username, text)
    events = await bob.fetch()
    reported = events[-1]
    assert isinstance(reported, MessageEvent) and reported.text == "or else"
    accepted = await bob.report(reported, ReportReason.HARASSMENT, note="he keeps asking", context=5)
    assert accepted.reported == alice.username
    assert accepted.verified == [True] * 5
    # a second report about alice joins the same case
    again = await bob.report(
        events[-2].message_id, ReportReason.SEXTORTION, conversation=alice.username, context=0
    )
    assert again.case_id == accepted.case_id and again.verified == [True]
    async with server_context(server.data_dir, server.database_url) as ctx:
        [summary] = await cases.queue(ctx, QueueFilter())
        assert (summary.subject, summary.reports, summary.verified) == (alice.username, 2, True)
        assert summary.reason == "sextortion"
        detail = await cases.case_detail(ctx, "reviewer:test", accepted.case_id, frozenset())
        first = detail.reports[0]
        assert first.note == "he keeps asking"
        assert [i.text for i in first.items] == [
            "hey",
            "who is this?",
            "a friend",
            "send me a photo",
            "or else",
        ]
        assert all(i.verified for i in first.items)
        async with ctx.sessions() as session:
            assert (await verify_chain(session)).ok
    # nothing reported is stored in the clear
    if server.database_url.startswith("sqlite"):
        raw = Path(server.database_url.split("///", 1)[1]).read_bytes()
        assert b"send me a photo" not in raw and b"he keeps asking" not in raw


async def test_forged_items_are_kept_as_unverified_claims(server, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    carol = await register(server.url, tmp_path, "carol")
    await alice.send_text(bob.username, "you are wonderful")
    await alice.send_text(carol.username, "hello carol")
    picture = b"\x89PNG\r\n\x1a\n" + bytes(range(200)) * 20
    await alice.send_attachment(bob.username, picture, "image/png", name="p.png")
    bob_events = await bob.fetch()
    await carol.fetch()
    text_record = bob.history(alice.username)[0]
    image_record = bob.history(alice.username)[1]
    carol_record = carol.history(alice.username)[0]

    async def verdict_of(record: dict, attachment: bytes | None = None) -> bool:
        ids = {record["payload"]["message_id"]: attachment} if attachment is not None else {}
        request = build_report([record], ReportReason.HARASSMENT, attachments=ids)
        return (await bob.transport.report(request)).verified[0]

    assert await verdict_of(text_record) is True
    assert await verdict_of(image_record, picture) is True
    altered = {**text_record, "payload": {**text_record["payload"], "body": "you are worthless"}}
    assert await verdict_of(altered) is False
    # wrong sender: bob claims carol sent alice's message (carol's commitment can't be made by bob)
    relabelled = {**text_record, "payload": {**text_record["payload"], "sender": carol.username}}
    with pytest.raises(ValidationError):  # the claimed sender is... carol: reported, but unverified
        await verdict_of({**relabelled, "payload": {**relabelled["payload"], "sender": bob.username}})
    assert await verdict_of(relabelled) is False
    # a tag (and timestamp) replayed from alice's conversation with carol
    replayed = {
        **text_record,
        "franking_tag": carol_record["franking_tag"],
        "server_ts_ms": carol_record["server_ts_ms"],
    }
    assert await verdict_of(replayed) is False
    # carol's genuine message, re-labelled as sent to bob
    moved = {**carol_record, "payload": {**carol_record["payload"], "conversation": bob.username}}
    assert await verdict_of(moved) is False
    # a swapped attachment
    assert await verdict_of(image_record, picture[:-1] + b"\x00") is False
    assert isinstance(bob_events[1], MessageEvent) and bob_events[1].attachment is not None
    accepted = await bob.report(bob_events[1], ReportReason.CSAM, context=1)  # attachment from the event
    assert accepted.verified == [True, True]


async def test_block_and_report_in_one_refuses_the_sender(server, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    await alice.send_text(bob.username, "spam spam spam")
    [event] = await bob.fetch()
    accepted = await bob.report(event, ReportReason.SPAM, block=True)
    assert accepted.blocked
    with pytest.raises(PolicyViolation, match=f"^{NEUTRAL_REFUSAL}$"):  # not told it was a block
        await alice.send_text(bob.username, "let me in")
    await bob.send_text(alice.username, "blocking is one-way")  # bob can still write
    assert texts(await alice.fetch()) == ["blocking is one-way"]
    await bob.unblock(alice.username)
    await alice.send_text(bob.username, "thanks")
    assert texts(await bob.fetch()) == ["thanks"]
    await bob.block(alice.username)
    assert (await bob.transport.blocks()).blocked == [alice.username]
    with pytest.raises(PolicyViolation):
        await alice.send_text(bob.username, "again")


@pytest.mark.fresh_server  # its case is the whole queue
async def test_actions_are_enforced_by_the_server(server, tmp_path: Path) -> None:
    mallory = await register(server.url, tmp_path, "mallory")
    bob = await register(server.url, tmp_path, "bob")
    carol = await register(server.url, tmp_path, "carol")
    teen = await register(server.url, tmp_path, "teen", TEEN)
    await mallory.send_text(bob.username, "first")
    [event] = await bob.fetch()
    accepted = await bob.report(event, ReportReason.GROOMING)
    async with server_context(server.data_dir, server.database_url) as ctx:
        [summary] = await cases.queue(ctx, QueueFilter())
        assert summary.priority_label == "high"
        policy = await policies.add_policy(ctx, "reviewer:t", f"GR-{secrets.token_hex(3)}", "Grooming")
        await cases.apply_action(
            ctx, "reviewer:t", None, accepted.case_id, CaseAction.WARN, policy_id=policy.id
        )
        # The actioned account is told in a signed notice about itself (verified by its client).
        [notice] = await mallory.safety_notices()
        assert (notice.kind, notice.subject, notice.actions) == ("action_warn", mallory.username, ())

        await cases.apply_action(
            ctx, "reviewer:t", None, accepted.case_id, CaseAction.RESTRICT, policy_id=policy.id
        )
        # The restricted account is told of its restriction once, as a notice; its refused sends are
        # the neutral refusal (the refusal to reach a minor must not say the recipient is one).
        assert [n.kind for n in await mallory.safety_notices()] == ["action_warn", "action_restrict"]
        await mallory.send_text(bob.username, "existing adult conversation still works")
        with pytest.raises(PolicyViolation, match=f"^{NEUTRAL_REFUSAL}$"):
            await mallory.send_text(teen.username, "still there?")
        with pytest.raises(PolicyViolation, match=f"^{NEUTRAL_REFUSAL}$"):
            await mallory.send_text(carol.username, "hello stranger")

        await cases.apply_action(
            ctx, "reviewer:t", None, accepted.case_id, CaseAction.SUSPEND, policy_id=policy.id
        )
        with pytest.raises(PolicyViolation, match="suspended"):
            await mallory.send_text(bob.username, "suspended")
        with pytest.raises(PolicyViolation, match="suspended"):
            await mallory.fetch()  # cannot sign in at all
        # ... but reads why: the suspension's notice (and an appeal's outcome, later) stays readable
        assert [n.kind for n in await mallory.safety_notices()][-1] == "action_suspend"

        await cases.apply_action(ctx, "reviewer:t", None, accepted.case_id, CaseAction.LIFT)
        await mallory.send_text(carol.username, "lifted")
        assert texts(await carol.fetch()) == ["lifted"]
        async with ctx.sessions() as session:
            check = await verify_chain(session)
            assert check.ok and check.entries >= 5


@pytest.mark.fresh_server  # sweeps every delivered message in the database
async def test_own_messages_verify_after_the_delivery_records_are_swept(server, tmp_path: Path) -> None:
    """The sender's device keeps the tag from the send's answer, so the reporter's own context messages
    verify from it once the server has deleted its records of them (issue 16)."""
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    await alice.send_text(bob.username, "hi")
    await bob.fetch()
    mine = await bob.send_text(alice.username, "who are you?")
    await alice.fetch()
    await alice.send_text(bob.username, "send a photo")
    [reported] = await bob.fetch()
    async with server_context(server.data_dir, server.database_url) as ctx:
        [sweep] = [s for s in retention.SWEEPS if s.name == "delivered_messages"]
        later = ctx.clock_ms() + (ctx.settings.delivery_retry_hours + 1) * 3600 * 1000
        assert await retention.run_sweep(ctx, sweep, later) >= 3
        async with ctx.sessions() as session:
            bob_row = await UserRepository(session).by_username(bob.username)
            assert bob_row is not None
            assert await MessageRepository(session).by_client_id(bob_row.id, mine.message_id) is None
    accepted = await bob.report(reported, ReportReason.HARASSMENT, context=2)
    assert accepted.verified == [True, True, True]
    async with server_context(server.data_dir, server.database_url) as ctx:
        detail = await cases.case_detail(ctx, "reviewer:test", accepted.case_id, frozenset())
        items = {i.text: i.verified for i in detail.reports[0].items}
        assert items == {"send a photo": True, "who are you?": True, "hi": True}
        async with ctx.sessions() as session:
            [entry] = [e for e in await recent_entries(session) if e.action == "report.submitted"]
            reporter = await UserRepository(session).by_username(bob.username)
            assert reporter is not None and entry.actor == f"user:{reporter.id}"  # an id, not the name
            assert (await verify_chain(session)).ok


@pytest.mark.fresh_server  # sweeps every report in the database
async def test_reports_are_deleted_after_retention(server, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    await alice.send_text(bob.username, "old news")
    [event] = await bob.fetch()
    accepted = await bob.report(event, ReportReason.OTHER)
    async with server_context(server.data_dir, server.database_url) as ctx:
        assert await reports.sweep_expired_reports(ctx) == 0
        now = ctx.clock_ms()
        ctx.clock_ms = lambda: now + 366 * reports.DAY_MS
        assert await reports.sweep_expired_reports(ctx) == 1
        detail = await cases.case_detail(ctx, "reviewer:t", accepted.case_id, frozenset())
        assert detail.reports == []  # the case stays as metadata; the content is gone
        async with ctx.sessions() as session:
            assert (await verify_chain(session)).ok


def test_report_wire_rejects_oversized_or_bad_base64() -> None:
    from pydantic import ValidationError as PydanticError

    from vigil.protocol.reports import ReportedMessage

    with pytest.raises(PydanticError):
        ReportedMessage(payload={}, commitment="not base64" + "=" * 34)
    with pytest.raises(PydanticError):
        ReportedMessage(payload={}, commitment=base64.b64encode(b"x" * 32).decode(), franking_tag="short")
    assert select_records  # imported for the unit of selection below


def test_select_records_takes_the_message_and_the_ones_before_it() -> None:
    history = [{"payload": {"message_id": str(n)}} for n in range(10)]
    chosen = select_records(history, "7", 3)
    assert [r["payload"]["message_id"] for r in chosen] == ["7", "6", "5", "4"]
    assert len(select_records(history, "1", 5)) == 2


@pytest.mark.fresh_server  # reviewer 'ann'; the dismissed queue
async def test_case_workflow_notes_assignment_escalation_and_reopen(server, tmp_path: Path) -> None:
    from vigil.console.auth import Role, create_reviewer
    from vigil.errors import ConflictError, ValidationError

    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    await alice.send_text(bob.username, "threat")
    [event] = await bob.fetch()
    case_id = (await bob.report(event, ReportReason.HARASSMENT)).case_id
    async with server_context(server.data_dir, server.database_url) as ctx:
        ann = await create_reviewer(ctx, "ann", "a long enough password", Role.REVIEWER, "test")
        await cases.assign(ctx, ann.actor, case_id, ann.id)
        await cases.add_note(ctx, ann.actor, ann.id, case_id, "context suggests a real threat")
        assert await cases.apply_action(ctx, ann.actor, ann.id, case_id, CaseAction.ESCALATE) == "escalated"
        await cases.reopen(ctx, "reviewer:lead", case_id)
        with pytest.raises(ValidationError, match="policy"):  # a reviewer's decision cites a policy
            await cases.apply_action(ctx, ann.actor, ann.id, case_id, CaseAction.DISMISS)
        policy = await policies.add_policy(ctx, "reviewer:root", f"NV-{secrets.token_hex(3)}", "No violation")
        dismiss = CaseAction.DISMISS
        assert (
            await cases.apply_action(ctx, ann.actor, ann.id, case_id, dismiss, policy_id=policy.id)
            == "dismissed"
        )
        assert (await cases.case_summary(ctx, case_id)).decision_policy_id == policy.id
        with pytest.raises(ConflictError):
            await cases.apply_action(ctx, ann.actor, ann.id, case_id, dismiss, policy_id=policy.id)
        assert [c.id for c in await cases.queue(ctx, QueueFilter(assignee_id=ann.id))] == []  # closed
        assert [c.id for c in await cases.queue(ctx, QueueFilter(states=("dismissed",)))] == [case_id]
        detail = await cases.case_detail(ctx, ann.actor, case_id, frozenset())
        assert [n[2] for n in detail.notes] == ["context suggests a real threat"]
        actions = [e.action for e in reversed(detail.audit)]
        assert actions[:1] == ["report.submitted"]
        for expected in (
            "case.assigned",
            "case.note_added",
            "case.escalate",
            "case.reopened",
            "case.dismiss",
        ):
            assert expected in actions
        # a new report about alice opens a fresh case: the dismissed one stays closed
        await alice.send_text(bob.username, "again")
        [event] = await bob.fetch()
        assert (await bob.report(event, ReportReason.HARASSMENT)).case_id != case_id

"""Each retention rule on a simulated clock (every sweep takes `now_ms`), on SQLite and (when reachable)
PostgreSQL: nothing goes a moment early, everything goes once its time is up, and each run is counted in
the metrics `GET /v1/retention` serves."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from image_match_records import record_image_match
from live_server import backend_database
from sqlalchemy import func, select

from vigil.errors import ConflictError
from vigil.protocol.contacts import ContactRequestState
from vigil.protocol.ids import DeviceId, UserId
from vigil.protocol.vouchers import SealedVoucher
from vigil.protocol.wire import AgeBand
from vigil.server.context import ServerContext
from vigil.server.db.accounts import UserRow
from vigil.server.db.audit import AuditRow
from vigil.server.db.base import Base
from vigil.server.db.case_evidence import CaseEvidenceRow
from vigil.server.db.cases import CaseRow
from vigil.server.db.contacts import ContactRequestRow
from vigil.server.db.groups import GroupRow, MembershipPeriodRow
from vigil.server.db.hashlists import ImageMatchCaseRow, VoucherRow
from vigil.server.db.messaging import MessageRow, QueueRow
from vigil.server.db.metadata import MetadataEventRow
from vigil.server.db.notices import NoticeRow, SafetyNoticeRow
from vigil.server.db.preservation import PreservationHoldRow
from vigil.server.db.reviewers import ConsoleSessionRow, ReviewerRow
from vigil.server.services import cases, deletion, metadata, preservation, retention
from vigil.server.services.accounts import AuthenticatedDevice
from vigil.server.services.audit import verify_chain
from vigil.server.services.case_evidence import erase_case_evidence
from vigil.server.services.policies import add_policy
from vigil.server.services.preservation import PRESERVATION_DAYS, place_hold, preserved_copies, release_hold
from vigil.server.settings import Settings

T0 = 1_800_000_000_000
HOUR = 3600 * 1000
DAY = 24 * HOUR


@pytest.fixture(params=["sqlite", "postgres"])
async def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ServerContext]:
    with backend_database(request.param) as url:
        async with ServerContext.open(
            Settings(data_dir=tmp_path, database_url=url), clock_ms=lambda: T0
        ) as context:
            yield context


async def _count(ctx: ServerContext, model: type[Base]) -> int:
    async with ctx.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _users(ctx: ServerContext) -> tuple[int, int]:
    async with ctx.sessions() as session, session.begin():
        rows = [UserRow(username=name, age_band="adult", created_at_ms=T0) for name in ("alice", "bob")]
        session.add_all(rows)
        await session.flush()
        return rows[0].id, rows[1].id


async def _message(ctx: ServerContext, sender: int, client_id: str, at_ms: int, *, queued: bool) -> None:
    async with ctx.sessions() as session, session.begin():
        message = MessageRow(
            client_id=client_id,
            sender_user_id=sender,
            sender_device_id="dev-a",
            conversation="bob",
            kind="text",
            commitment=b"c" * 32,
            franking_tag=b"t" * 32,
            server_ts_ms=at_ms,
            device_count=1,
        )
        session.add(message)
        await session.flush()
        if queued:
            session.add(
                QueueRow(device_id="dev-b", message_id=message.id, message_type=1, body=b"ciphertext")
            )


async def _device(ctx: ServerContext, user_id: int, device_id: str) -> None:
    from vigil.server.db.accounts import DeviceRow

    async with ctx.sessions() as session, session.begin():
        session.add(
            DeviceRow(
                id=device_id,
                user_id=user_id,
                curve25519="k",
                ed25519="k",
                signature="s",
                credential_sha256=b"h" * 32,
                created_at_ms=T0,
            )
        )


async def _sweep(ctx: ServerContext, name: str, now_ms: int) -> int:
    [sweep] = [s for s in retention.SWEEPS if s.name == name]
    return await retention.run_sweep(ctx, sweep, now_ms)


async def test_a_delivered_message_record_goes_after_the_retry_window(ctx: ServerContext) -> None:
    alice, bob = await _users(ctx)
    await _device(ctx, bob, "dev-b")
    await _message(ctx, alice, "delivered", T0, queued=False)
    await _message(ctx, alice, "waiting", T0, queued=True)
    window = ctx.settings.delivery_retry_hours * HOUR
    assert await _sweep(ctx, "delivered_messages", T0 + window - 1) == 0
    assert await _sweep(ctx, "delivered_messages", T0 + window + 1) == 1
    async with ctx.sessions() as session:
        assert list(await session.scalars(select(MessageRow.client_id))) == ["waiting"]


async def test_an_abandoned_queue_entry_goes_then_its_record(ctx: ServerContext) -> None:
    alice, bob = await _users(ctx)
    await _device(ctx, bob, "dev-b")
    await _message(ctx, alice, "never fetched", T0, queued=True)
    keep = ctx.settings.queue_retention_days * DAY
    assert await _sweep(ctx, "abandoned_queue_entries", T0 + keep - 1) == 0
    assert await _sweep(ctx, "abandoned_queue_entries", T0 + keep + 1) == 1
    assert await _count(ctx, QueueRow) == 0
    assert await _sweep(ctx, "delivered_messages", T0 + keep + 1) == 1
    assert await _count(ctx, MessageRow) == 0


async def test_metadata_events_are_kept_for_the_scoring_window_plus_a_margin(ctx: ServerContext) -> None:
    assert ctx.settings.metadata_retention_days == 35  # the 28-day scoring window + 7 days
    async with ctx.sessions() as session, session.begin():
        session.add(MetadataEventRow(at_ms=T0, kind="msg", actor="alice", target="bob"))
    assert await _sweep(ctx, "metadata_events", T0 + 35 * DAY) == 0
    assert await _sweep(ctx, "metadata_events", T0 + 35 * DAY + 1) == 1


async def test_contact_requests_are_ignored_then_deleted_after_their_answer(ctx: ServerContext) -> None:
    alice, bob = await _users(ctx)
    async with ctx.sessions() as session, session.begin():
        session.add_all(
            [
                ContactRequestRow(
                    requester_user_id=alice,
                    recipient_user_id=bob,
                    state=ContactRequestState.PENDING.value,
                    created_at_ms=T0,
                ),
                ContactRequestRow(
                    requester_user_id=bob,
                    recipient_user_id=alice,
                    state=ContactRequestState.ACCEPTED.value,
                    created_at_ms=T0,
                    answered_at_ms=T0,
                ),
            ]
        )
    keep = ctx.settings.contact_request_retention_days * DAY
    assert await _sweep(ctx, "contact_requests", T0 + keep - 1) == 0  # the pending one is now ignored
    async with ctx.sessions() as session:
        states = sorted(await session.scalars(select(ContactRequestRow.state)))
    assert states == [ContactRequestState.ACCEPTED.value, ContactRequestState.IGNORED.value]
    assert await _sweep(ctx, "contact_requests", T0 + keep + 1) == 1  # the accepted one
    ignored_at = T0 + keep - 1
    assert await _sweep(ctx, "contact_requests", ignored_at + keep + 1) == 1
    assert await _count(ctx, ContactRequestRow) == 0


async def test_expired_console_sessions_go(ctx: ServerContext) -> None:
    async with ctx.sessions() as session, session.begin():
        reviewer = ReviewerRow(username="rev", password_hash="x", role="reviewer", created_at_ms=T0)
        session.add(reviewer)
        await session.flush()
        session.add(
            ConsoleSessionRow(
                token_sha256=b"s" * 32,
                reviewer_id=reviewer.id,
                csrf_token="c",
                revealed="",
                created_at_ms=T0,
                expires_at_ms=T0 + HOUR,
            )
        )
    assert await _sweep(ctx, "console_sessions", T0 + HOUR - 1) == 0
    assert await _sweep(ctx, "console_sessions", T0 + HOUR) == 1


async def test_old_notices_and_vouchers_go(ctx: ServerContext) -> None:
    alice, bob = await _users(ctx)
    async with ctx.sessions() as session, session.begin():
        session.add(NoticeRow(user_id=alice, kind="warning", text="a decision", created_at_ms=T0))
        session.add(
            SafetyNoticeRow(
                user_id=alice,
                subject_user_id=bob,
                kind="k",
                payload=b"p",
                signature=b"s" * 64,
                created_at_ms=T0,
            )
        )
        session.add(
            VoucherRow(
                id="v1",
                user_id=bob,
                device_id="d",
                ciphertext=b"c",
                mac=b"m",
                ephemeral_key=b"e",
                created_at_ms=T0,
            )
        )
    notices = ctx.settings.notice_retention_days * DAY
    vouchers = ctx.settings.voucher_retention_days * DAY
    assert await _sweep(ctx, "notices", T0 + notices - 1) == 0
    assert await _sweep(ctx, "notices", T0 + notices + 1) == 2
    assert await _sweep(ctx, "vouchers", T0 + vouchers - 1) == 0
    assert await _sweep(ctx, "vouchers", T0 + vouchers + 1) == 1
    assert await _count(ctx, VoucherRow) == 0


async def test_a_closed_image_match_goes_after_report_retention_an_open_one_stays(ctx: ServerContext) -> None:
    alice, _bob = await _users(ctx)

    def match(state: str) -> ImageMatchCaseRow:
        return ImageMatchCaseRow(
            source="voucher",
            subject_user_id=alice,
            priority=100,
            state=state,
            direction="sent",
            bank="b",
            entry_hash="h" * 64,
            pdq="p" * 64,
            distance=0,
            verification="",
            mime="image/png",
            image_ciphertext=b"c",
            image_mac=b"m",
            image_ephemeral_key=b"e",
            created_at_ms=T0,
        )

    async with ctx.sessions() as session, session.begin():
        session.add_all([match("open"), match("closed")])
    keep = ctx.settings.report_retention_days * DAY
    assert await _sweep(ctx, "image_matches", T0 + keep - 1) == 0
    assert await _sweep(ctx, "image_matches", T0 + keep + 1) == 1
    async with ctx.sessions() as session:
        assert list(await session.scalars(select(ImageMatchCaseRow.state))) == ["open"]


async def _image_match(ctx: ServerContext, subject: int) -> int:
    async with ctx.sessions() as session, session.begin():
        return await record_image_match(
            session, subject_user_id=subject, sealed_image=SealedVoucher(b"c", b"m", b"e"), now_ms=T0
        )


async def _match_states(ctx: ServerContext) -> dict[int, tuple[str, int | None]]:
    async with ctx.sessions() as session:
        rows = await session.execute(
            select(ImageMatchCaseRow.id, ImageMatchCaseRow.state, ImageMatchCaseRow.case_id)
        )
        return {i: (state, case_id) for i, state, case_id in rows.all()}


async def test_deciding_a_case_closes_its_image_matches_so_retention_applies(ctx: ServerContext) -> None:
    """An image-match record follows the reviewers' case it opened or joined: a decision (dismissal or
    action) closes it, audited; reopening the case reopens it; a merge moves it with the reports; once
    closed, the image_matches sweep deletes it after report retention, and only it."""
    alice, bob = await _users(ctx)
    policy = await add_policy(ctx, "lead:l", "CSAM-1", "Child sexual abuse material")
    bob_match = await _image_match(ctx, bob)
    alice_match = await _image_match(ctx, alice)
    states = await _match_states(ctx)
    bob_case, alice_case = states[bob_match][1], states[alice_match][1]
    assert bob_case is not None and alice_case is not None and bob_case != alice_case

    await cases.apply_action(ctx, "reviewer:r", None, bob_case, cases.CaseAction.DISMISS, policy_id=policy.id)
    assert (await _match_states(ctx))[bob_match] == ("dismissed", bob_case)
    assert (await _match_states(ctx))[alice_match] == ("open", alice_case)
    await cases.reopen(ctx, "lead:l", bob_case)
    assert (await _match_states(ctx))[bob_match] == ("open", bob_case)
    await cases.apply_action(ctx, "reviewer:r", None, bob_case, cases.CaseAction.WARN, policy_id=policy.id)
    assert (await _match_states(ctx))[bob_match] == ("actioned", bob_case)

    # A merge carries the record to the surviving case, which decides it.
    other_alice_case = await _open_case(ctx, alice)
    await cases.merge_case(ctx, "lead:l", alice_case, other_alice_case)
    assert (await _match_states(ctx))[alice_match] == ("open", other_alice_case)
    keep = ctx.settings.report_retention_days * DAY
    assert await _sweep(ctx, "image_matches", T0 + keep + 1) == 1  # bob's, decided; alice's still open
    assert set(await _match_states(ctx)) == {alice_match}
    await cases.apply_action(
        ctx, "reviewer:r", None, other_alice_case, cases.CaseAction.DISMISS, policy_id=policy.id
    )
    assert (await _match_states(ctx))[alice_match] == ("dismissed", other_alice_case)
    assert await _sweep(ctx, "image_matches", T0 + keep - 1) == 0  # not a moment early
    assert await _sweep(ctx, "image_matches", T0 + keep + 1) == 1
    assert await _match_states(ctx) == {}

    async with ctx.sessions() as session:
        audit = {
            (row.action, row.target): json.loads(row.details)
            for row in await session.scalars(select(AuditRow).order_by(AuditRow.id))
        }
        assert (await verify_chain(session)).ok
    assert audit[("case.dismiss", f"case:{other_alice_case}")]["image_matches_closed"] == [alice_match]
    assert audit[("case.warn", f"case:{bob_case}")]["image_matches_closed"] == [bob_match]
    assert audit[("case.reopened", f"case:{bob_case}")]["image_matches_reopened"] == [bob_match]
    assert audit[("case.merged_from", f"case:{other_alice_case}")]["image_matches"] == [alice_match]


async def test_each_run_is_counted_and_a_failure_is_recorded_by_type(ctx: ServerContext) -> None:
    await _users(ctx)
    async with ctx.sessions() as session, session.begin():
        session.add(MetadataEventRow(at_ms=T0, kind="msg", actor="alice", target="bob"))
    for sweep in retention.SWEEPS:
        await retention.run_sweep(ctx, sweep, T0 + 400 * DAY)
    stats = ctx.retention.sweeps
    assert set(stats) == {s.name for s in retention.SWEEPS}
    assert stats["metadata_events"].deleted_total == 1
    assert all(s.runs == 1 and s.last_run_ms == T0 + 400 * DAY for s in stats.values())

    async def broken(_ctx: ServerContext, _now: int) -> int:
        raise RuntimeError("secret detail")

    with pytest.raises(RuntimeError):
        await retention.run_sweep(ctx, retention.Sweep("broken", broken), T0)
    assert ctx.retention.sweeps["broken"].failures == 1
    assert ctx.retention.sweeps["broken"].last_error == "RuntimeError"


async def _open_case(ctx: ServerContext, subject: int) -> int:
    async with ctx.sessions() as session, session.begin():
        case = CaseRow(
            subject_user_id=subject,
            state="open",
            priority=50,
            top_reason="other",
            created_at_ms=T0,
            updated_at_ms=T0,
        )
        session.add(case)
        await session.flush()
        return case.id


async def _hold(ctx: ServerContext, case_id: int, subject: int) -> int:
    async with ctx.sessions() as session, session.begin():
        hold = await place_hold(
            ctx,
            session,
            case_id=case_id,
            subject_user_id=subject,
            filing_id=None,
            reason="CyberTipline report",
            blob_ids=frozenset(),
            actor="admin:t",
            now_ms=T0,
        )
        return hold.id


async def test_a_hold_copies_into_the_case_and_the_originals_go_at_their_normal_time(
    ctx: ServerContext,
) -> None:
    """Placing a hold seals the held account's records into the case; every sweep then deletes the
    originals on the same clock as anyone else's; a reviewer still reads the copy; releasing the hold after
    its date erases it and the audit chain still verifies."""
    alice, bob = await _users(ctx)
    case_id = await _open_case(ctx, bob)
    bob_alias, alice_alias = metadata.pseudonym_of(ctx, bob), metadata.pseudonym_of(ctx, alice)
    async with ctx.sessions() as session, session.begin():
        session.add(GroupRow(id="g1", created_by_user_id=alice, created_at_ms=T0))
        await session.flush()
        session.add_all(
            [
                ContactRequestRow(
                    requester_user_id=bob,
                    recipient_user_id=alice,
                    state=ContactRequestState.BLOCKED.value,
                    created_at_ms=T0,
                    answered_at_ms=T0,
                ),
                SafetyNoticeRow(
                    user_id=alice,
                    subject_user_id=bob,
                    kind="k",
                    payload=b"p",
                    signature=b"s" * 64,
                    created_at_ms=T0,
                ),
                MembershipPeriodRow(group_id="g1", user_id=bob, joined_at_ms=T0, left_at_ms=T0 + HOUR),
                MetadataEventRow(at_ms=T0, kind="msg", actor=bob_alias, target=alice_alias),
                MetadataEventRow(at_ms=T0, kind="msg", actor=alice_alias, target=None),
            ]
        )
    await _message(ctx, bob, "from the held account", T0, queued=False)
    await _message(ctx, alice, "to the held account", T0, queued=False)  # conversation "bob"
    await _message(ctx, alice, "elsewhere", T0, queued=False)
    async with ctx.sessions() as session, session.begin():
        row = await session.scalar(select(MessageRow).where(MessageRow.client_id == "elsewhere"))
        assert row is not None
        row.conversation = "carol"
    hold_id = await _hold(ctx, case_id, bob)

    # The originals go at their normal time, held or not: nothing a moment early...
    retry = ctx.settings.delivery_retry_hours * HOUR
    assert await _sweep(ctx, "delivered_messages", T0 + retry - 1) == 0
    assert await _sweep(ctx, "metadata_events", T0 + ctx.settings.metadata_retention_days * DAY) == 0
    # ...and everything once its own time is up.
    assert await _sweep(ctx, "delivered_messages", T0 + retry + 1) == 3
    assert await _sweep(ctx, "metadata_events", T0 + ctx.settings.metadata_retention_days * DAY + 1) == 2
    late = T0 + 400 * DAY
    assert await _sweep(ctx, "contact_requests", late) == 1
    assert await _sweep(ctx, "notices", late) == 1
    assert await _sweep(ctx, "membership_periods", late) == 1
    for model in (MessageRow, MetadataEventRow, ContactRequestRow, SafetyNoticeRow, MembershipPeriodRow):
        assert await _count(ctx, model) == 0, model.__tablename__

    # The copy remains, and reads back as what was held (bob's rows only, not alice's own event).
    (copy,) = await preserved_copies(ctx, case_id)
    assert copy["subject"]["username"] == "bob" and copy["subject"]["pseudonym"] == bob_alias
    tables = copy["tables"]
    assert sorted(m["client_id"] for m in tables["messages"]) == [
        "from the held account",
        "to the held account",
    ]
    assert [(e["actor"], e["target"]) for e in tables["metadata_events"]] == [(bob_alias, alice_alias)]
    assert [r["state"] for r in tables["contact_requests"]] == [ContactRequestState.BLOCKED.value]
    assert [n["subject_user_id"] for n in tables["safety_notices"]] == [bob]
    assert tables["safety_notices"][0]["signature"] == {"b64": base64.b64encode(b"s" * 64).decode()}
    assert [(p["group_id"], p["left_at_ms"]) for p in tables["membership_periods"]] == [("g1", T0 + HOUR)]
    detail = await cases.case_detail(ctx, "reviewer:r", case_id, frozenset())
    assert any("copy of bob's records" in text and "2 messages" in text for _at, _by, text in detail.notes)
    async with ctx.sessions() as session:
        sealed = (await session.scalars(select(CaseEvidenceRow.body_enc))).all()
        assert len(sealed) == 1 and b"bob" not in sealed[0] and b"held account" not in sealed[0]

    # Erasing the case's evidence is refused while the hold is in force; release erases the copy.
    with pytest.raises(ConflictError):
        await erase_case_evidence(ctx, "reviewer:r", case_id)
    with pytest.raises(ConflictError):
        await release_hold(ctx, hold_id, actor="admin:t", is_admin=True, now=late - 36 * DAY)
    await release_hold(ctx, hold_id, actor="admin:t", is_admin=True, now=T0 + PRESERVATION_DAYS * DAY)
    assert await preserved_copies(ctx, case_id) == []
    assert await _count(ctx, CaseEvidenceRow) == 0
    async with ctx.sessions() as session:
        assert (await verify_chain(session)).ok


async def test_a_hold_copies_the_group_messages_the_held_account_received_as_metadata_only(
    ctx: ServerContext,
) -> None:
    """A group message reached the held account when it was a member at the message's server time (as
    report verification counts membership, both ends included): its delivery record and metadata event are
    copied like a direct message's; messages from before it joined, after it left, or in groups it never
    joined are not; and no ciphertext is copied (metadata only)."""
    alice, bob = await _users(ctx)
    case_id = await _open_case(ctx, bob)
    alice_alias = metadata.pseudonym_of(ctx, alice)
    g2_joined = T0 + 2 * HOUR + 500  # the log floors its times to the second: an event at T0 + 2 h counts
    async with ctx.sessions() as session, session.begin():
        session.add_all(
            [GroupRow(id=g, created_by_user_id=alice, created_at_ms=T0) for g in ("g1", "g2", "g3")]
        )
        await session.flush()
        session.add_all(
            [
                MembershipPeriodRow(group_id="g1", user_id=bob, joined_at_ms=T0, left_at_ms=T0 + HOUR),
                MembershipPeriodRow(group_id="g2", user_id=bob, joined_at_ms=g2_joined, left_at_ms=None),
            ]
        )
        group_messages = {
            "g1 while a member": ("g1", T0 + 10),
            "g1 as it left": ("g1", T0 + HOUR),
            "g1 after it left": ("g1", T0 + HOUR + 1000),
            "g2 before it joined": ("g2", T0 + HOUR + 30),
            "g2 as it joined": ("g2", g2_joined),
            "g2 since it joined": ("g2", T0 + 3 * HOUR),
            "g3, never a member": ("g3", T0 + 10),
        }
        for client_id, (group, at_ms) in group_messages.items():
            session.add(
                MessageRow(
                    client_id=client_id,
                    sender_user_id=alice,
                    sender_device_id="dev-a",
                    conversation=f"group:{group}",
                    kind="text",
                    commitment=b"c" * 32,
                    franking_tag=b"t" * 32,
                    server_ts_ms=at_ms,
                    device_count=1,
                    shared_body=b"megolm ciphertext",
                )
            )
            session.add(
                MetadataEventRow(
                    at_ms=at_ms - at_ms % metadata.LOG_RESOLUTION_MS,
                    kind="msg",
                    actor=alice_alias,
                    target=None,
                    group_id=group,
                    content="text",
                )
            )
    await _hold(ctx, case_id, bob)

    (copy,) = await preserved_copies(ctx, case_id)
    messages = copy["tables"]["messages"]
    assert sorted(m["client_id"] for m in messages) == [
        "g1 as it left",
        "g1 while a member",
        "g2 as it joined",
        "g2 since it joined",
    ]
    assert all("shared_body" not in m for m in messages)
    assert base64.b64encode(b"megolm ciphertext").decode() not in json.dumps(copy)
    events = copy["tables"]["metadata_events"]
    assert sorted((e["group_id"], e["at_ms"]) for e in events) == [
        ("g1", T0),
        ("g1", T0 + HOUR),
        ("g2", T0 + 2 * HOUR),
        ("g2", T0 + 3 * HOUR),
    ]


async def test_closed_membership_periods_go_after_the_history_window(ctx: ServerContext) -> None:
    alice, bob = await _users(ctx)
    async with ctx.sessions() as session, session.begin():
        session.add(GroupRow(id="g1", created_by_user_id=alice, created_at_ms=T0))
        await session.flush()
        session.add_all(
            [
                MembershipPeriodRow(group_id="g1", user_id=alice, joined_at_ms=T0, left_at_ms=None),
                MembershipPeriodRow(group_id="g1", user_id=bob, joined_at_ms=T0, left_at_ms=T0 + DAY),
            ]
        )
    keep = ctx.settings.membership_history_days * DAY
    assert await _sweep(ctx, "membership_periods", T0 + DAY + keep - 1) == 0
    assert await _sweep(ctx, "membership_periods", T0 + DAY + keep + 1) == 1
    async with ctx.sessions() as session:
        assert list(await session.scalars(select(MembershipPeriodRow.user_id))) == [alice]  # still a member


async def test_a_hold_from_before_holds_copied_is_copied_at_start_up(ctx: ServerContext) -> None:
    """Holds placed before migration 0021 kept their data in place; start-up copies them once."""
    _alice, bob = await _users(ctx)
    case_id = await _open_case(ctx, bob)
    await _message(ctx, bob, "from before", T0, queued=False)
    async with ctx.sessions() as session, session.begin():
        session.add(
            PreservationHoldRow(
                case_id=case_id,
                subject_user_id=bob,
                filing_id=None,
                reason="CyberTipline report",
                blob_ids="",
                created_by="admin:t",
                created_at_ms=T0,
                hold_until_ms=T0 + PRESERVATION_DAYS * DAY,
            )
        )
    assert await preservation.copy_uncopied_holds(ctx) == 1
    assert await preservation.copy_uncopied_holds(ctx) == 0  # once
    (copy,) = await preserved_copies(ctx, case_id)
    assert [m["client_id"] for m in copy["tables"]["messages"]] == ["from before"]


async def test_a_deleted_held_account_keeps_only_the_case_copy_and_what_its_open_case_needs(
    ctx: ServerContext,
) -> None:
    """The hold no longer keeps the originals (its copy is in the case); the open case does, until it
    closes; then only the sealed copy names the account, until the hold is released."""
    alice, bob = await _users(ctx)
    await _device(ctx, bob, "dev-b")
    case_id = await _open_case(ctx, bob)
    bob_alias, alice_alias = metadata.pseudonym_of(ctx, bob), metadata.pseudonym_of(ctx, alice)
    async with ctx.sessions() as session, session.begin():
        session.add(MetadataEventRow(at_ms=T0, kind="msg", actor=bob_alias, target=alice_alias))
        session.add(MetadataEventRow(at_ms=T0, kind="msg", actor=alice_alias, target=None))
    await _message(ctx, bob, "held", T0, queued=False)
    hold_id = await _hold(ctx, case_id, bob)
    by = AuthenticatedDevice(bob, UserId("bob"), DeviceId("dev-b"), AgeBand.ADULT)
    answer = await deletion.delete_account(ctx, by)
    assert "the username" not in answer.deleted
    whys = [k.why for k in answer.kept]
    assert any("preservation hold" in why for why in whys) and any("case" in why for why in whys)
    assert await _sweep(ctx, "deleted_accounts", T0 + DAY) == 0  # the open case keeps the originals
    async with ctx.sessions() as session, session.begin():
        closed = await session.get(CaseRow, case_id)
        assert closed is not None
        closed.state = "closed"
    assert await _sweep(ctx, "deleted_accounts", T0 + DAY + 1) == 1  # the hold does not keep them
    assert await _sweep(ctx, "deleted_accounts", T0 + DAY + 2) == 0  # finished once
    async with ctx.sessions() as session:
        user = await session.get(UserRow, bob)
        assert user is not None and user.username.startswith("deleted_")
        assert user.deletion_pending_since_ms is None
    assert await _count(ctx, MetadataEventRow) == 1  # alice's own event stays; bob's went
    assert await _count(ctx, MessageRow) == 0
    (copy,) = await preserved_copies(ctx, case_id)  # held data only: the sealed copy
    assert copy["subject"]["username"] == "bob" and len(copy["tables"]["messages"]) == 1
    released = T0 + (PRESERVATION_DAYS + 1) * DAY
    await release_hold(ctx, hold_id, actor="admin:t", is_admin=True, now=released)
    assert await preserved_copies(ctx, case_id) == []
    async with ctx.sessions() as session:
        assert (await verify_chain(session)).ok

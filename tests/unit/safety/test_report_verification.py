"""Report verification: an honest report verifies; each forgery fails with a reason."""

from __future__ import annotations

import hashlib

import pytest

from vigil.protocol.encoding import b64encode
from vigil.protocol.franking import FrankingContext, commit, new_franking_key, server_tag
from vigil.protocol.reports import ReportReason
from vigil.protocol.wire import AgeBand, AttachmentDescriptor, InnerPayload, MessageKind
from vigil.safety.reports import (
    BAD_FAITH_CEILING,
    UNVERIFIED_CEILING,
    ClaimedItem,
    GroupMembership,
    StoredMessage,
    priority_for,
    priority_label,
    verify_item,
)

KEY = b"s" * 32
IMAGE = b"\x89PNG pretend image bytes" * 10


def _message(
    body: str = "meet me, don't tell your parents",
    sender: str = "mallory",
    to: str = "bob",
    ts: int = 1_700_000_000_000,
    attachment: bytes | None = None,
    message_id: str = "0b7c9d3e-8f7a-4c34-a0e0-2a8f5d6c1b11",
) -> tuple[ClaimedItem, StoredMessage]:
    descriptor = None
    if attachment is not None:
        descriptor = AttachmentDescriptor(
            blob_id="a" * 32,
            key=b64encode(b"k" * 32),
            sha256=b64encode(hashlib.sha256(attachment).digest()),
            size=len(attachment),
            mime="image/png",
        )
    kf = new_franking_key()
    payload = InnerPayload(
        message_id=message_id,
        sender=sender,
        conversation=to,
        sent_at_ms=ts - 5,
        kind=MessageKind.IMAGE if descriptor else MessageKind.TEXT,
        body=body,
        attachment=descriptor,
        franking_key=b64encode(kf),
    )
    commitment = commit(kf, payload.franked_bytes())
    tag = server_tag(KEY, FrankingContext(commitment, sender, to, ts, message_id))
    claimed = ClaimedItem(payload.model_dump(mode="json"), commitment, tag, ts, attachment)
    return claimed, StoredMessage(sender, to, ts, commitment, tag)


def _with_payload(claimed: ClaimedItem, **changes: object) -> ClaimedItem:
    return ClaimedItem(
        {**claimed.payload, **changes},
        claimed.commitment,
        claimed.franking_tag,
        claimed.server_ts_ms,
        claimed.attachment,
    )


@pytest.mark.parametrize("use_stored", [True, False])
def test_honest_report_verifies_with_or_without_the_servers_record(use_stored: bool) -> None:
    claimed, stored = _message()
    verdict = verify_item(KEY, "bob", claimed, stored if use_stored else None)
    assert verdict.verified, verdict.reason
    assert (verdict.sender, verdict.conversation) == ("mallory", "bob")
    assert verdict.payload is not None and verdict.payload.body.startswith("meet me")


@pytest.mark.parametrize("use_stored", [True, False])
def test_altered_text_fails(use_stored: bool) -> None:
    claimed, stored = _message()
    forged = _with_payload(claimed, body="send me your address")
    verdict = verify_item(KEY, "bob", forged, stored if use_stored else None)
    assert not verdict.verified and "commitment" in verdict.reason


@pytest.mark.parametrize("use_stored", [True, False])
def test_wrong_sender_fails(use_stored: bool) -> None:
    # eve really sent it; bob claims mallory did. Re-committing with the real key cannot help: the
    # server tag binds the sender the server saw.
    claimed, stored = _message(sender="eve")
    relabelled = _with_payload(claimed, sender="mallory")
    assert not verify_item(KEY, "bob", relabelled, None).verified
    # A payload the reporter rebuilt around mallory with a fresh commitment has no valid tag.
    fake, _ = _message(sender="mallory")
    swapped = ClaimedItem(fake.payload, fake.commitment, claimed.franking_tag, claimed.server_ts_ms, None)
    verdict = verify_item(KEY, "bob", swapped, None)
    assert not verdict.verified and "tag" in verdict.reason
    if use_stored:  # without a tag the server's record decides, and it says eve sent another commitment
        untagged = ClaimedItem(fake.payload, fake.commitment, None, None, None)
        stored_eve = StoredMessage("eve", "bob", stored.server_ts_ms, stored.commitment, stored.franking_tag)
        assert not verify_item(KEY, "bob", untagged, stored_eve).verified


def test_tag_replayed_from_another_conversation_fails() -> None:
    to_carol, _ = _message(to="carol")
    to_bob, _ = _message(to="bob", message_id=to_carol.payload["message_id"])  # type: ignore[arg-type]
    replayed = ClaimedItem(
        to_bob.payload, to_bob.commitment, to_carol.franking_tag, to_carol.server_ts_ms, None
    )
    verdict = verify_item(KEY, "bob", replayed, None)
    assert not verdict.verified and "tag" in verdict.reason
    # carol's genuine message, reported by bob who was not in that conversation
    verdict = verify_item(KEY, "bob", to_carol, None)
    assert not verdict.verified and "party" in verdict.reason


def test_swapped_or_missing_attachment_fails() -> None:
    claimed, stored = _message(attachment=IMAGE)
    assert verify_item(KEY, "bob", claimed, stored).verified
    swapped = ClaimedItem(
        claimed.payload,
        claimed.commitment,
        claimed.franking_tag,
        claimed.server_ts_ms,
        b"a different picture of the same size!"[: len(IMAGE)] + IMAGE[37:],
    )
    verdict = verify_item(KEY, "bob", swapped, stored)
    assert not verdict.verified and "attachment" in verdict.reason
    missing = ClaimedItem(
        claimed.payload, claimed.commitment, claimed.franking_tag, claimed.server_ts_ms, None
    )
    assert not verify_item(KEY, "bob", missing, stored).verified


def test_wrong_timestamp_wrong_key_and_bit_flips_fail() -> None:
    claimed, stored = _message()
    late = ClaimedItem(claimed.payload, claimed.commitment, claimed.franking_tag, 1, None)
    assert not verify_item(KEY, "bob", late, None).verified
    assert not verify_item(b"x" * 32, "bob", claimed, None).verified
    assert claimed.franking_tag is not None
    for bit in range(0, 256, 17):
        tag = bytearray(claimed.franking_tag)
        tag[bit // 8] ^= 1 << (bit % 8)
        flipped = ClaimedItem(claimed.payload, claimed.commitment, bytes(tag), claimed.server_ts_ms, None)
        assert not verify_item(KEY, "bob", flipped, stored).verified
    other_commitment = ClaimedItem(
        claimed.payload, b"\x00" * 32, claimed.franking_tag, claimed.server_ts_ms, None
    )
    assert not verify_item(KEY, "bob", other_commitment, stored).verified


def test_malformed_payload_is_a_claim_not_an_error() -> None:
    claimed, stored = _message()
    broken = ClaimedItem({"body": "hi"}, claimed.commitment, claimed.franking_tag, claimed.server_ts_ms, None)
    verdict = verify_item(KEY, "bob", broken, stored)
    assert not verdict.verified and verdict.payload is None


@pytest.mark.parametrize("reason", list(ReportReason))
@pytest.mark.parametrize("band", list(AgeBand))
def test_an_unverified_claim_is_never_urgent_on_its_own(reason: ReportReason, band: AgeBand) -> None:
    claim = priority_for(reason, False, band)
    assert claim <= UNVERIFIED_CEILING and priority_label(claim) != "urgent"
    assert priority_for(reason, True, band) >= claim  # verification never lowers a rank


def test_verified_child_safety_evidence_is_urgent_and_a_minors_claim_still_ranks_high() -> None:
    assert priority_label(priority_for(ReportReason.CSAM, True, AgeBand.ADULT)) == "urgent"
    assert priority_label(priority_for(ReportReason.GROOMING, True, AgeBand.TEEN_13_15)) == "urgent"
    assert priority_label(priority_for(ReportReason.CSAM, False, AgeBand.ADULT)) == "high"
    assert priority_label(priority_for(ReportReason.GROOMING, False, AgeBand.TEEN_13_15)) == "high"


@pytest.mark.parametrize("reason", list(ReportReason))
def test_a_bad_faith_reporters_claims_rank_low_and_their_verified_evidence_keeps_its_rank(
    reason: ReportReason,
) -> None:
    for band in (AgeBand.ADULT, AgeBand.TEEN_13_15):
        claim = priority_for(reason, False, band, bad_faith_reporter=True)
        assert claim <= BAD_FAITH_CEILING and priority_label(claim) == "low"
        assert claim <= priority_for(reason, False, band)
        assert priority_for(reason, True, band, bad_faith_reporter=True) == priority_for(reason, True, band)
    assert priority_for(ReportReason.CSAM, False, AgeBand.ADULT, bad_faith_reporter=True) < priority_for(
        ReportReason.CSAM, False, AgeBand.ADULT
    )


def test_priority_puts_a_minor_reporting_grooming_first() -> None:
    minor = priority_for(ReportReason.GROOMING, True, AgeBand.TEEN_13_15)
    adult = priority_for(ReportReason.GROOMING, True, AgeBand.ADULT)
    spam = priority_for(ReportReason.SPAM, True, AgeBand.TEEN_13_15)
    assert minor > adult > spam
    assert priority_label(minor) == "urgent" and priority_label(spam) == "low"
    assert priority_for(ReportReason.HARASSMENT, False, AgeBand.ADULT) < priority_for(
        ReportReason.HARASSMENT, True, AgeBand.ADULT
    )


def test_a_tagged_item_verifies_without_the_servers_record_and_an_untagged_one_needs_it() -> None:
    claimed, stored = _message(sender="bob", to="mallory")  # bob's own message, in his report
    untagged = ClaimedItem(claimed.payload, claimed.commitment, None, None, None)
    assert verify_item(KEY, "bob", untagged, stored).verified
    verdict = verify_item(KEY, "bob", untagged, None)
    assert not verdict.verified and "no server tag" in verdict.reason


# ---- group messages: the tag binds "group:<id>"; membership at the message's time decides ----------

GROUP = "group:" + "ab" * 16
TS = 1_700_000_000_000
HOUR = 3600 * 1000


def _history(**periods: list[tuple[int, int | None]]) -> GroupMembership:
    return GroupMembership(GROUP, periods)


MEMBERS = _history(mallory=[(TS - HOUR, None)], bob=[(TS - HOUR, None)])


def test_a_group_message_verifies_for_a_member_reporter() -> None:
    claimed, _ = _message(to=GROUP, attachment=IMAGE)
    verdict = verify_item(KEY, "bob", claimed, None, MEMBERS)
    assert verdict.verified, verdict.reason
    assert (verdict.sender, verdict.conversation, verdict.server_ts_ms) == ("mallory", GROUP, TS)


@pytest.mark.parametrize(
    ("bob", "why"),
    [
        ([], "never a member"),
        ([(TS + 1, None)], "joined after the message"),
        ([(TS - HOUR, TS - 1)], "left before the message"),
        ([(TS - 2 * HOUR, TS - HOUR), (TS + HOUR, None)], "away when it was sent"),
    ],
)
def test_a_group_message_does_not_verify_for_a_non_member_reporter(
    bob: list[tuple[int, int | None]], why: str
) -> None:
    claimed, _ = _message(to=GROUP)
    verdict = verify_item(KEY, "bob", claimed, None, _history(mallory=[(TS - HOUR, None)], bob=bob))
    assert not verdict.verified, why
    assert verdict.reason == "the reporter was not a member of the group at the message's time"


def test_a_member_between_two_stretches_verifies_and_the_boundaries_count() -> None:
    claimed, _ = _message(to=GROUP)
    returned = _history(mallory=[(TS, None)], bob=[(TS - 2 * HOUR, TS - HOUR), (TS - 5, TS)])
    assert verify_item(KEY, "bob", claimed, None, returned).verified


def test_a_group_message_from_a_non_member_sender_or_without_history_does_not_verify() -> None:
    claimed, _ = _message(to=GROUP)
    verdict = verify_item(KEY, "bob", claimed, None, _history(mallory=[(TS + 1, None)], bob=[(0, None)]))
    assert not verdict.verified and "sender was not a member" in verdict.reason
    verdict = verify_item(KEY, "bob", claimed, None, None)
    assert not verdict.verified and "membership history is unknown" in verdict.reason
    other_group = GroupMembership("group:" + "cd" * 16, MEMBERS.periods)
    assert not verify_item(KEY, "bob", claimed, None, other_group).verified


def test_forged_group_items_do_not_verify() -> None:
    claimed, _ = _message(to=GROUP, sender="eve")
    everyone = _history(mallory=[(0, None)], eve=[(0, None)], bob=[(0, None)])
    assert verify_item(KEY, "bob", claimed, None, everyone).verified
    # wrong sender: eve's message relabelled as mallory's
    verdict = verify_item(KEY, "bob", _with_payload(claimed, sender="mallory"), None, everyone)
    assert not verdict.verified and "commitment" in verdict.reason
    # altered text
    verdict = verify_item(KEY, "bob", _with_payload(claimed, body="something else"), None, everyone)
    assert not verdict.verified and "commitment" in verdict.reason
    # moved into another group (re-committed by the reporter: the tag binds the group)
    moved, _ = _message(to="group:" + "cd" * 16, sender="eve")
    swapped = ClaimedItem(moved.payload, moved.commitment, claimed.franking_tag, TS, None)
    verdict = verify_item(KEY, "bob", swapped, None, everyone)
    assert not verdict.verified and "tag" in verdict.reason
    # a shifted timestamp (to land inside the reporter's membership) breaks the tag
    late = ClaimedItem(claimed.payload, claimed.commitment, claimed.franking_tag, TS + HOUR, None)
    assert not verify_item(KEY, "bob", late, None, everyone).verified

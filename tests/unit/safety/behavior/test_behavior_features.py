"""Hand-built event streams, each feature checked against the value worked out by hand."""

from __future__ import annotations

import pytest

from vigil.errors import ValidationError
from vigil.safety.behavior.events import (
    AccountFacts,
    AgeBand,
    Block,
    ContactRequestAnswered,
    ContactRequestSent,
    GroupCreated,
    GroupId,
    GroupJoined,
    GroupMemberAdded,
    MessageKind,
    MessageSent,
    MetadataEvent,
    ReportFiled,
    ReportReason,
    RequestOutcome,
    UserId,
    apply_retention,
    event_from_record,
    event_to_record,
)
from vigil.safety.behavior.features import DAY_MS, FEATURE_NAMES, HOUR_MS, FeatureExtractor

T0 = 1_000 * DAY_MS  # a midnight, UTC
ADULT, KID1, KID2, KID3, FRIEND, PARENT = (
    UserId(x) for x in ("adult", "kid1", "kid2", "kid3", "friend", "par")
)
NOON = 12 * HOUR_MS


def smoothed(hits: float, total: float, share: float, weight: float) -> float:
    return (hits + share * weight) / (total + weight)


def dm(at: int, s: UserId, r: UserId, kind: MessageKind = MessageKind.TEXT) -> MessageSent:
    return MessageSent(at, s, r, None, 0, kind)


@pytest.fixture
def ex() -> FeatureExtractor:
    ex = FeatureExtractor(window_days=7)
    for user, band in (
        (ADULT, AgeBand.ADULT),
        (KID1, AgeBand.TEEN_13_15),
        (KID2, AgeBand.TEEN_13_15),
        (KID3, AgeBand.TEEN_16_17),
        (FRIEND, AgeBand.ADULT),
        (PARENT, AgeBand.ADULT),
    ):
        ex.register_account(AccountFacts(user, band, T0 - 10 * DAY_MS))
    return ex


def test_feature_names_are_stable_and_unique() -> None:
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES) == 37
    assert FEATURE_NAMES[:5] == (
        "account_age_days",
        "is_adult",
        "messages_sent_per_day",
        "distinct_contacts",
        "distinct_minors_contacted",
    )


def test_stranger_reaching_minors(ex: FeatureExtractor) -> None:
    # kid1 and kid2 are friends; the adult is connected to the friend adult only.
    ex.observe_all(
        [
            ContactRequestSent(T0 + 1, KID1, KID2),
            ContactRequestAnswered(T0 + 2, KID1, KID2, RequestOutcome.ACCEPTED),
            ContactRequestSent(T0 + 3, ADULT, FRIEND),
            ContactRequestAnswered(T0 + 4, ADULT, FRIEND, RequestOutcome.ACCEPTED),
            # Day 1: requests to three minors: one accepted, one declined, one ignored.
            ContactRequestSent(T0 + DAY_MS + NOON, ADULT, KID1),
            ContactRequestSent(T0 + DAY_MS + NOON + 1, ADULT, KID2),
            ContactRequestSent(T0 + DAY_MS + NOON + 2, ADULT, KID3),
            ContactRequestAnswered(T0 + DAY_MS + NOON + 10, ADULT, KID1, RequestOutcome.ACCEPTED),
            ContactRequestAnswered(T0 + DAY_MS + NOON + 11, ADULT, KID2, RequestOutcome.DECLINED),
            ContactRequestAnswered(T0 + 2 * DAY_MS, ADULT, KID3, RequestOutcome.IGNORED),
            # Day 2: four DMs to kid1, two at 23:00, one image; kid1 answers once, with an image.
            dm(T0 + 2 * DAY_MS + NOON, ADULT, KID1),
            dm(T0 + 2 * DAY_MS + NOON + 1, ADULT, KID1, MessageKind.IMAGE),
            dm(T0 + 2 * DAY_MS + 23 * HOUR_MS, ADULT, KID1),
            dm(T0 + 2 * DAY_MS + 23 * HOUR_MS + 1, ADULT, KID1),
            dm(T0 + 2 * DAY_MS + 23 * HOUR_MS + 2, KID1, ADULT, MessageKind.IMAGE),
            Block(T0 + 3 * DAY_MS, KID2, ADULT),
            ReportFiled(T0 + 3 * DAY_MS + 1, KID2, ADULT, ReportReason.GROOMING),
            Block(T0 + 3 * DAY_MS + 2, FRIEND, ADULT),
        ]
    )
    f = ex.features(ADULT, T0 + 4 * DAY_MS)
    assert f["account_age_days"] == 14.0
    assert f["is_adult"] == 1.0
    assert f["messages_sent_per_day"] == pytest.approx(4 / 7)
    assert f["distinct_contacts"] == 4.0  # friend + three kids
    assert f["distinct_minors_contacted"] == 3.0
    assert f["minor_contact_share"] == 0.75
    assert f["new_conversations_per_day"] == pytest.approx(4 / 7)
    assert f["new_minor_conversations_per_day"] == pytest.approx(3 / 7)
    assert f["max_new_contacts_in_a_day"] == 3.0
    # friend and kid1 connected; kid2 and kid3 not.
    assert f["unconnected_share"] == pytest.approx(smoothed(2, 4, 0.05, 4.0))
    # No mutual contact with any kid at first contact (kid1-kid2 are friends, but not of the adult).
    assert f["minors_no_mutual_share"] == pytest.approx(smoothed(3, 3, 0.1, 2.0))
    assert f["requests_sent"] == 4.0
    assert f["request_minor_share"] == 0.75
    assert f["request_decline_rate"] == pytest.approx(smoothed(1, 4, 0.1, 4.0))
    assert f["request_ignore_rate"] == pytest.approx(smoothed(1, 4, 0.1, 4.0))
    assert f["blocks_received"] == 2.0
    assert f["blocks_received_from_minors"] == 1.0
    assert f["reports_received"] == 1.0
    assert f["reports_received_from_minors"] == 1.0
    assert f["reply_ratio"] == pytest.approx((1 + 1) / (4 + 1))
    assert f["minor_reply_ratio"] == pytest.approx((1 + 1) / (4 + 1))
    # Band ranks: adult 3, 13_15 1, 16_17 2 -> gaps 0, 2, 2, 1.
    assert f["mean_band_gap"] == pytest.approx(5 / 4)
    assert f["night_share"] == pytest.approx(smoothed(2, 4, 0.07, 20.0))
    assert f["night_share_to_minors"] == pytest.approx(smoothed(2, 4, 0.07, 20.0))
    assert f["media_share_to_minors"] == pytest.approx(smoothed(1, 4, 0.12, 10.0))
    assert f["early_media_from_minors"] == 1.0
    assert f["groups_created_with_minors"] == 0.0
    assert ex.minors_contacted(ADULT, T0 + 4 * DAY_MS) == [KID1, KID2, KID3]


def test_mutual_contact_and_groups(ex: FeatureExtractor) -> None:
    g = GroupId("team")
    ex.observe_all(
        [
            ContactRequestSent(T0 + 1, PARENT, KID1),
            ContactRequestAnswered(T0 + 2, PARENT, KID1, RequestOutcome.ACCEPTED),
            ContactRequestSent(T0 + 3, ADULT, PARENT),
            ContactRequestAnswered(T0 + 4, ADULT, PARENT, RequestOutcome.ACCEPTED),
            ContactRequestSent(T0 + 5, ADULT, KID1),  # the parent is a mutual contact
            GroupCreated(T0 + 6, ADULT, g),
            GroupMemberAdded(T0 + 7, ADULT, KID1, g),
            GroupMemberAdded(T0 + 8, ADULT, KID2, g),
            GroupMemberAdded(T0 + 9, ADULT, KID2, g),  # duplicate add counts once
            MessageSent(T0 + 10, ADULT, None, g, 1, MessageKind.TEXT),
        ]
    )
    f = ex.features(ADULT, T0 + DAY_MS)
    assert f["minors_no_mutual_share"] == pytest.approx(smoothed(0, 1, 0.1, 2.0))
    assert f["groups_created_with_minors"] == 1.0
    assert f["minors_added_to_groups"] == 2.0
    assert f["group_messages_per_day"] == pytest.approx(1 / 7)


def test_two_way_messages_connect(ex: FeatureExtractor) -> None:
    ex.observe_all(
        [dm(T0 + NOON, ADULT, FRIEND), dm(T0 + NOON + 1, FRIEND, ADULT), dm(T0 + NOON + 2, ADULT, FRIEND)]
    )
    assert ex.features(ADULT, T0 + DAY_MS)["unconnected_share"] == pytest.approx(smoothed(0, 1, 0.05, 4.0))
    assert ex.features(FRIEND, T0 + DAY_MS)["new_conversations_per_day"] == 0.0  # the adult started it


def test_window_slides(ex: FeatureExtractor) -> None:
    ex.observe(dm(T0 + NOON, ADULT, KID1))
    ex.observe(Block(T0 + NOON + 1, KID1, ADULT))
    inside = ex.features(ADULT, T0 + 6 * DAY_MS)
    assert inside["blocks_received"] == 1.0 and inside["distinct_minors_contacted"] == 1.0
    outside = ex.features(ADULT, T0 + 7 * DAY_MS)
    assert outside["blocks_received"] == 0.0 and outside["distinct_minors_contacted"] == 0.0
    # Later events roll buckets forward and expire the old day.
    ex.observe(dm(T0 + 20 * DAY_MS, ADULT, FRIEND))
    assert ex.features(ADULT, T0 + 20 * DAY_MS)["messages_sent_per_day"] == pytest.approx(1 / 7)


def test_unknown_account_is_refused(ex: FeatureExtractor) -> None:
    with pytest.raises(ValidationError, match="unregistered"):
        ex.observe(dm(T0, ADULT, UserId("nobody")))
    with pytest.raises(ValidationError):
        ex.features(UserId("nobody"), T0)


def test_dirty_tracking_and_prune(ex: FeatureExtractor) -> None:
    ex.observe(dm(T0, ADULT, KID1))
    assert ex.drain_dirty() == {ADULT}
    assert ex.drain_dirty() == set()
    assert ex.prune(T0 + 100 * DAY_MS, 30 * DAY_MS) == 2  # both sides of the link


def test_record_round_trip_and_retention() -> None:
    events: list[MetadataEvent] = [
        dm(5, ADULT, KID1, MessageKind.IMAGE),
        MessageSent(6, ADULT, None, GroupId("g"), 2, MessageKind.FILE),
        ContactRequestSent(7, ADULT, KID1),
        ContactRequestAnswered(8, ADULT, KID1, RequestOutcome.IGNORED),
        Block(9, KID1, ADULT),
        ReportFiled(10, KID1, ADULT, ReportReason.SEXTORTION),
        GroupCreated(11, ADULT, GroupId("g")),
        GroupMemberAdded(12, ADULT, KID1, GroupId("g")),
    ]
    assert [event_from_record(event_to_record(e)) for e in events] == events
    assert apply_retention(events, now_ms=12, retention_ms=3) == events[-4:]
    with pytest.raises(ValidationError):
        event_from_record({"k": "msg", "t": 1, "s": "a", "b": 0, "c": "text"})
    with pytest.raises(ValidationError):
        apply_retention(events, 0, -1)


def test_history_ties_are_not_new_contacts() -> None:
    """The warm-up artefact: a parent's tie from before the window is history, not a new conversation."""
    ex = FeatureExtractor(window_days=28)
    parent, child, stranger = UserId("parent"), UserId("child"), UserId("stranger")
    for user, band in ((parent, AgeBand.ADULT), (child, AgeBand.TEEN_13_15), (stranger, AgeBand.ADULT)):
        ex.register_account(AccountFacts(user, band, T0 - 400 * DAY_MS))
    ex.register_tie(parent, child, T0 - 200 * DAY_MS)
    ex.observe_all(
        [
            MessageSent(T0 + HOUR_MS, parent, child, None, 0, MessageKind.TEXT),
            MessageSent(T0 + HOUR_MS, stranger, child, None, 0, MessageKind.TEXT),
        ]
    )
    now = T0 + 2 * HOUR_MS
    assert ex.features(parent, now)["new_minor_conversations_per_day"] == 0.0
    assert ex.features(parent, now)["distinct_minors_contacted"] == 1.0
    assert ex.features(stranger, now)["new_minor_conversations_per_day"] > 0.0
    # mark_history: everything so far becomes history; the stranger's tie is no longer new either.
    ex.mark_history(now)
    assert ex.features(stranger, now + HOUR_MS)["new_minor_conversations_per_day"] == 0.0


def test_shared_group_is_context(ex: FeatureExtractor) -> None:
    """A club leader reaching a minor from the club shares a group; a cold approach shares nothing."""
    group = GroupId("club")
    ex.observe_all(
        [
            GroupCreated(T0, ADULT, group),
            GroupJoined(T0 + 1, KID1, group),
            ContactRequestSent(T0 + 2, ADULT, KID1),
            ContactRequestSent(T0 + 3, ADULT, KID2),
        ]
    )
    f = ex.features(ADULT, T0 + HOUR_MS)
    # Two new minors, neither with a mutual contact; only KID2 shares no group either.
    assert f["minors_no_mutual_share"] > f["minors_no_context_share"] > 0.1


def test_sustained_conversations_with_newly_met_minors() -> None:
    """Three days of writing to a minor the account reached itself is sustained; a history tie never is,
    nor is one day of many messages."""
    ex = FeatureExtractor(window_days=28)
    stranger, parent, kid, child = UserId("s"), UserId("p"), UserId("k"), UserId("c")
    for user, band in ((stranger, AgeBand.ADULT), (parent, AgeBand.ADULT), (kid, AgeBand.TEEN_13_15)):
        ex.register_account(AccountFacts(user, band, T0 - 400 * DAY_MS))
    ex.register_account(AccountFacts(child, AgeBand.TEEN_13_15, T0 - 400 * DAY_MS))
    ex.register_tie(parent, child, T0 - 200 * DAY_MS)
    ex.observe(ContactRequestSent(T0, stranger, kid))
    for d in range(2):
        ex.observe_all([dm(T0 + d * DAY_MS + NOON + j, stranger, kid) for j in range(5)])
        ex.observe_all([dm(T0 + d * DAY_MS + NOON + j, parent, child) for j in range(5)])
    assert ex.features(stranger, T0 + 2 * DAY_MS)["sustained_new_minor_conversations"] == 0.0
    ex.observe(dm(T0 + 2 * DAY_MS + NOON, stranger, kid))
    ex.observe(dm(T0 + 2 * DAY_MS + NOON, parent, child))
    assert ex.features(stranger, T0 + 3 * DAY_MS)["sustained_new_minor_conversations"] == 1.0
    assert ex.features(parent, T0 + 3 * DAY_MS)["sustained_new_minor_conversations"] == 0.0
    # Counted once, on the day it became sustained; it leaves the window with that day.
    ex.observe(dm(T0 + 3 * DAY_MS + NOON, stranger, kid))
    assert ex.features(stranger, T0 + 4 * DAY_MS)["sustained_new_minor_conversations"] == 1.0
    assert ex.features(stranger, T0 + 31 * DAY_MS)["sustained_new_minor_conversations"] == 0.0


def test_group_to_dm_move_and_night_share_over_newly_met_minors() -> None:
    """A minor met only in a group the account joined by link in the window is a group-to-DM move; a
    group from before the window (history) is context, not the move. Night messages to the account's own
    children do not count toward the night share over newly met minors."""
    ex = FeatureExtractor(window_days=28)
    joiner, old_member, kid1, kid2, parent, child = (UserId(x) for x in ("j", "o", "k1", "k2", "p", "c"))
    for user in (joiner, old_member, parent):
        ex.register_account(AccountFacts(user, AgeBand.ADULT, T0 - 400 * DAY_MS))
    for user in (kid1, kid2, child):
        ex.register_account(AccountFacts(user, AgeBand.TEEN_13_15, T0 - 400 * DAY_MS))
    old, new = GroupId("old-club"), GroupId("new-club")
    ex.observe_all([GroupJoined(T0 - DAY_MS, m, old) for m in (old_member, kid1)])
    ex.register_tie(parent, child, T0 - 200 * DAY_MS)
    ex.mark_history(T0)
    ex.observe_all(
        [
            GroupJoined(T0 + HOUR_MS, kid2, new),
            GroupJoined(T0 + 2 * HOUR_MS, joiner, new),
            ContactRequestSent(T0 + 3 * HOUR_MS, joiner, kid2),
            ContactRequestSent(T0 + 3 * HOUR_MS, old_member, kid1),
            # 23:00 and 01:00: night; noon: day.
            dm(T0 + 23 * HOUR_MS, joiner, kid2),
            dm(T0 + 25 * HOUR_MS, joiner, kid2),
            dm(T0 + 36 * HOUR_MS, joiner, kid2),
            dm(T0 + 23 * HOUR_MS, parent, child),
            dm(T0 + 25 * HOUR_MS, parent, child),
        ]
    )
    now = T0 + 2 * DAY_MS
    assert ex.features(joiner, now)["minors_met_in_joined_groups"] == 1.0
    assert ex.features(old_member, now)["minors_met_in_joined_groups"] == 0.0
    assert ex.features(joiner, now)["night_share_to_new_minors"] == pytest.approx(smoothed(2, 3, 0.07, 20.0))
    assert ex.features(parent, now)["night_share_to_new_minors"] == pytest.approx(0.07)
    assert ex.features(parent, now)["night_share_to_minors"] > 0.07


def test_minors_who_stop_answering_and_refuse_requests(ex: FeatureExtractor) -> None:
    """What the minors do: kid1 answers, kid2 stops answering while the adult keeps writing, kid3 declines.
    A request to an adult that is accepted does not dilute the minors' refusals."""
    events: list[MetadataEvent] = [
        ContactRequestSent(T0 + NOON, ADULT, KID1),
        ContactRequestAnswered(T0 + NOON + 60_000, ADULT, KID1, RequestOutcome.ACCEPTED),
        ContactRequestSent(T0 + NOON, ADULT, KID2),
        ContactRequestAnswered(T0 + NOON + 60_000, ADULT, KID2, RequestOutcome.ACCEPTED),
        ContactRequestSent(T0 + NOON, ADULT, KID3),
        ContactRequestAnswered(T0 + NOON + 60_000, ADULT, KID3, RequestOutcome.DECLINED),
        ContactRequestSent(T0 + NOON, ADULT, PARENT),
        ContactRequestAnswered(T0 + NOON + 60_000, ADULT, PARENT, RequestOutcome.ACCEPTED),
        dm(T0 + NOON + 2 * HOUR_MS, KID2, ADULT),  # kid2's last word
    ]
    for day in range(4):
        at = T0 + day * DAY_MS + 14 * HOUR_MS
        for k in range(2):
            events += [dm(at + k * HOUR_MS, ADULT, KID1), dm(at + k * HOUR_MS + 60_000, KID1, ADULT)]
            events.append(dm(at + k * HOUR_MS, ADULT, KID2))
    ex.observe_all(events)
    f = ex.features(ADULT, T0 + 4 * DAY_MS)
    # 4 unanswered messages arrive by day 1; 48 h after kid2's last word is on day 2: counted once.
    assert f["new_minors_gone_silent"] == 1.0
    assert f["minor_request_refusal_share"] == pytest.approx(smoothed(1, 3, 0.2, 4.0))
    # Before 48 h have passed, kid2 is only quiet, not silent.
    assert ex.features(ADULT, T0 + DAY_MS + 15 * HOUR_MS)["new_minors_gone_silent"] == 0.0


def test_silence_counts_only_minors_the_account_reached_itself(ex: FeatureExtractor) -> None:
    """A parent writing to a child who does not answer (a history tie) is not a minor gone silent."""
    ex.register_tie(PARENT, KID1, T0 - 30 * DAY_MS)
    ex.mark_history(T0)
    ex.observe_all([dm(T0 + d * DAY_MS + NOON + k, PARENT, KID1) for d in range(4) for k in range(3)])
    assert ex.features(PARENT, T0 + 4 * DAY_MS)["new_minors_gone_silent"] == 0.0

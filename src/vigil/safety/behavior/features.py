"""Per-account behavioural features over a sliding window, computed incrementally from metadata events.

`FeatureExtractor` is fed events in (roughly) time order and keeps, per account:
  * day buckets of counters (messages sent, to minors, at night, media, new conversations, requests and
    their outcomes, blocks and reports received, ...). The window is the last `window_days` whole days, so
    a snapshot sums at most `window_days` small lists and an event costs one or two list increments;
  * one `_Link` per counterpart (first contact, who initiated, last outgoing contact, counts both ways,
    connected or not), so distinct-counterpart features are exact for the window;
  * the set of connected peers, to tell at first contact whether the two accounts had any mutual contact.
    Strangers reaching minors with no mutual contact is what most separates groomers from coaches,
    whose new team members already know the rest of the team.

"Connected" means an accepted contact request (either way) or a two-way exchange of direct messages.
Nothing here reads content; everything comes from `vigil.safety.behavior.events`. Pure and synchronous:
the clock is the events' own timestamps and the `now_ms` a snapshot is asked for.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

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
    RequestOutcome,
    UserId,
)

__all__ = [
    "ACCOUNT_CONTROLLED",
    "DAY_MS",
    "FEATURE_NAMES",
    "FEATURE_SPECS",
    "HOUR_MS",
    "MINOR_DRIVEN",
    "FeatureExtractor",
    "FeatureSpec",
    "FeatureVector",
]

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
# Media a minor sends a stranger within this long of first contact is the sextortion pattern.
EARLY_MEDIA_MS = 72 * HOUR_MS


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """A feature's stable name, how a model should scale it, how to say it to a reviewer, and which way
    it may move risk: +1 only up as the value rises above the benign baseline, -1 only up as it falls below
    it, 0 not used by the model. No feature can lower risk below the baseline
    (`vigil.safety.behavior.model`)."""

    name: str
    log_scale: bool
    reason: str  # format string over the raw value `v`
    direction: int = 1


FEATURE_SPECS: tuple[FeatureSpec, ...] = (
    FeatureSpec("account_age_days", True, "account is {v:.0f} days old", -1),
    FeatureSpec("is_adult", False, "declared adult", 0),
    # Generic activity (all contacts, adults included) says nothing about minors, and the account controls it:
    # not used (issue 11: count activity only where it matters).
    FeatureSpec("messages_sent_per_day", True, "sends {v:.1f} direct messages a day", 0),
    FeatureSpec("distinct_contacts", True, "messaged or requested {v:.0f} distinct accounts", 0),
    FeatureSpec("distinct_minors_contacted", True, "contacted {v:.0f} distinct minors"),
    FeatureSpec("minor_contact_share", False, "{v:.0%} of the accounts it contacts are minors"),
    FeatureSpec("new_conversations_per_day", True, "starts {v:.1f} new conversations a day"),
    FeatureSpec(
        "new_minor_conversations_per_day", True, "starts {v:.2f} new conversations with minors a day"
    ),
    FeatureSpec("max_new_contacts_in_a_day", True, "reached {v:.0f} new accounts in a single day"),
    FeatureSpec("unconnected_share", False, "about {v:.0%} of the accounts it contacts never connected back"),
    FeatureSpec("minors_no_mutual_share", False, "{v:.0%} of the minors it reached had no mutual contact"),
    FeatureSpec("requests_sent", True, "sent {v:.0f} contact requests"),
    # A share the account dilutes by also requesting adults; the count of new minor conversations carries
    # the signal without the lever.
    FeatureSpec("request_minor_share", False, "{v:.0%} of its contact requests went to minors", 0),
    FeatureSpec("request_decline_rate", False, "{v:.0%} of its contact requests were declined"),
    FeatureSpec("request_ignore_rate", False, "{v:.0%} of its contact requests were ignored"),
    FeatureSpec("blocks_received", True, "blocked by {v:.0f} accounts"),
    FeatureSpec("blocks_received_from_minors", True, "blocked by {v:.0f} minors"),
    FeatureSpec("reports_received", True, "reported {v:.0f} times"),
    FeatureSpec("reports_received_from_minors", True, "reported {v:.0f} times by minors"),
    FeatureSpec("reply_ratio", False, "gets {v:.2f} replies per message sent", -1),
    # Victims answer groomers eagerly and sextortion accounts barely: no direction is evidence.
    FeatureSpec("minor_reply_ratio", False, "minors answer {v:.2f} messages per message it sends them", 0),
    FeatureSpec("mean_band_gap", False, "mean age-band gap to its contacts is {v:.1f}", 0),
    FeatureSpec("night_share", False, "{v:.0%} of its messages are sent at night", 0),
    FeatureSpec("night_share_to_minors", False, "{v:.0%} of its messages to minors are sent at night", 0),
    FeatureSpec("media_share_to_minors", False, "{v:.0%} of its messages to minors are images or files"),
    FeatureSpec("early_media_from_minors", True, "{v:.0f} newly met minors sent it images within 3 days"),
    FeatureSpec("groups_created_with_minors", True, "created {v:.0f} groups that include minors"),
    FeatureSpec("minors_added_to_groups", True, "added minors to groups {v:.0f} times"),
    # Posting in groups says nothing about harm to minors, and an evader controls it: not used (the old
    # model let it lower risk without bound). Group activity counts only where minors are.
    FeatureSpec("group_messages_per_day", True, "sends {v:.1f} group messages a day", 0),
    FeatureSpec("groups_joined_with_minors", True, "joined {v:.0f} groups with minors in them by link"),
    # A club leader reaches minors it shares a group with; a cold approach shares nothing.
    FeatureSpec(
        "minors_no_context_share",
        False,
        "{v:.0%} of the minors it reached shared neither a contact nor a group",
    ),
    # Grooming needs a sustained private conversation with a minor the account met itself; a club leader's
    # or a friend's-child contact is a few messages. History ties (mark_history, register_tie) do not count.
    FeatureSpec(
        "messages_to_newly_met_minors_per_day",
        True,
        "sends {v:.1f} messages a day to minors it recently reached",
    ),
    # Persistence toward minors: a minor the account reached itself and then kept writing to on three or
    # more days. A club leader's hello or a friend's-child contact does not get there; history ties never do.
    FeatureSpec(
        "sustained_new_minor_conversations",
        True,
        "kept up private conversations with {v:.0f} minors it reached itself",
    ),
    # The group-to-DM move: minors it first wrote to privately whom it knew only from a group it joined by
    # link in the window (a group-first approach). Groups from before the window are history.
    FeatureSpec(
        "minors_met_in_joined_groups",
        True,
        "wrote privately to {v:.0f} minors met only in groups it recently joined",
    ),
    # Secrecy in time, over the minors it reached itself only: a parent's or relative's late messages to
    # their own children do not count (night_share_to_minors mixed them in; it is no longer used).
    FeatureSpec(
        "night_share_to_new_minors",
        False,
        "{v:.0%} of its messages to minors it recently reached are sent at night",
    ),
    # What the minors do, which the account does not control (issue 11: a probe on the account's own
    # levers cannot move these). The share of its contact requests to minors that the minors declined or let
    # expire: requests to adults do not dilute it.
    FeatureSpec(
        "minor_request_refusal_share",
        False,
        "{v:.0%} of its contact requests to minors were declined or ignored",
    ),
    # Minors it reached itself who stopped answering while it kept writing (several messages over two
    # days with no reply): what most minors do once a conversation turns sexual. Pupils and friends'
    # children answer.
    FeatureSpec(
        "new_minors_gone_silent",
        True,
        "kept writing to {v:.0f} minors it reached itself after they stopped answering",
    ),
)
FEATURE_NAMES: tuple[str, ...] = tuple(spec.name for spec in FEATURE_SPECS)
# Features the account itself can cheaply move toward benign values (an evader's levers): a model must
# not let them lower risk below the benign baseline, and `vigil sim score` probes each of them.
ACCOUNT_CONTROLLED: tuple[str, ...] = (
    "account_age_days",
    "messages_sent_per_day",
    "distinct_contacts",
    "minor_contact_share",
    "new_conversations_per_day",
    "max_new_contacts_in_a_day",
    "requests_sent",
    "request_minor_share",
    "reply_ratio",
    "mean_band_gap",
    "night_share",
    "night_share_to_minors",
    "night_share_to_new_minors",
    "media_share_to_minors",
    "groups_created_with_minors",
    "minors_added_to_groups",
    "group_messages_per_day",
    "groups_joined_with_minors",
)
# Features set by what others (mostly the minors) do: the account cannot move them toward benign values
# except by harming fewer minors. Listed so that a test can hold the two lists apart.
MINOR_DRIVEN: tuple[str, ...] = (
    "request_decline_rate",
    "request_ignore_rate",
    "blocks_received",
    "blocks_received_from_minors",
    "reports_received",
    "reports_received_from_minors",
    "early_media_from_minors",
    "minor_request_refusal_share",
    "new_minors_gone_silent",
)
_INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}

# Day-bucket counter slots.
(
    _SENT,
    _RECEIVED,
    _SENT_MINOR,
    _RECEIVED_MINOR,
    _MEDIA_MINOR,
    _NIGHT,
    _NIGHT_MINOR,
    _NEW_CONV,
    _NEW_CONV_MINOR,
    _NEW_MINOR_NO_MUTUAL,
    _REQ_SENT,
    _REQ_SENT_MINOR,
    _REQ_ACCEPTED,
    _REQ_DECLINED,
    _REQ_IGNORED,
    _BLOCKS,
    _BLOCKS_MINOR,
    _REPORTS,
    _REPORTS_MINOR,
    _EARLY_MEDIA_MINOR,
    _MINORS_ADDED,
    _GROUP_SENT,
    _JOINED_MINOR_GROUP,
    _NEW_MINOR_NO_CONTEXT,
    _SENT_NEW_MINOR,
    _SUSTAINED_NEW_MINOR,
    _NEW_MINOR_JOINED_GROUP,
    _NIGHT_NEW_MINOR,
    _REQ_MINOR_ANSWERED,
    _REQ_MINOR_REFUSED,
    _NEW_MINOR_SILENT,
) = range(31)
_N_COUNTERS = 31
# Days with outgoing messages after which a conversation with a newly met minor counts as sustained.
_SUSTAINED_DAYS = 3
# A newly met minor has gone silent when the account has sent this many messages since the minor last
# wrote (or since first contact) and this long has passed: a child who skips a day of a tutor's messages
# is not silent.
_SILENT_MESSAGES = 4
_SILENT_MS = 48 * HOUR_MS

# Shares are shrunk toward a typical value until there are enough observations: three messages, all
# sent at 2 a.m., are not evidence of a night-time habit (the first scorer run flagged parents on exactly
# that at 6 a.m. on day one). (prior share, pseudo-count)
_PRIOR_NIGHT = (0.07, 20.0)
_PRIOR_MEDIA = (0.12, 10.0)
_PRIOR_DECLINE = (0.1, 4.0)
_PRIOR_IGNORE = (0.1, 4.0)
_PRIOR_UNCONNECTED = (0.05, 4.0)
_PRIOR_NO_MUTUAL = (0.1, 2.0)
_PRIOR_MINOR_REFUSAL = (0.2, 4.0)


def _smoothed(hits: float, total: float, prior: tuple[float, float]) -> float:
    share, weight = prior
    return (hits + share * weight) / (total + weight)


_BAND_RANK = {AgeBand.UNDER_13: 0.0, AgeBand.TEEN_13_15: 1.0, AgeBand.TEEN_16_17: 2.0, AgeBand.ADULT: 3.0}


@dataclass(frozen=True, slots=True)
class FeatureVector:
    """One account's features at `at_ms`, in `FEATURE_NAMES` order."""

    user: UserId
    at_ms: int
    values: tuple[float, ...]

    def __getitem__(self, name: str) -> float:
        """Raises KeyError for an unknown feature name."""
        return self.values[_INDEX[name]]

    def as_dict(self) -> dict[str, float]:
        return dict(zip(FEATURE_NAMES, self.values, strict=True))


class _Link:
    """One account's view of one counterpart."""

    __slots__ = (
        "connected",
        "early_media_seen",
        "first_ms",
        "initiated",
        "last_in_ms",
        "last_out_day",
        "last_out_ms",
        "out_days",
        "received",
        "sent",
        "silent_seen",
        "unanswered",
    )

    def __init__(self, first_ms: int, initiated: bool) -> None:
        self.first_ms = first_ms
        self.initiated = initiated
        self.last_out_ms = -1
        self.last_out_day = -1
        self.out_days = 0
        self.sent = 0
        self.received = 0
        self.connected = False
        self.early_media_seen = False
        self.last_in_ms = -1
        self.unanswered = 0  # messages sent since the counterpart last wrote
        self.silent_seen = False


class _Account:
    __slots__ = (
        "band",
        "created_ms",
        "cur",
        "day",
        "friends",
        "groups",
        "groups_created",
        "hist",
        "joined",
        "links",
        "minor",
    )

    def __init__(self, facts: AccountFacts) -> None:
        self.band = facts.age_band
        self.minor = facts.age_band.is_minor
        self.created_ms = facts.created_at_ms
        self.day = -(2**62)
        self.cur: list[int] = [0] * _N_COUNTERS
        self.hist: deque[tuple[int, list[int]]] = deque()
        self.links: dict[UserId, _Link] = {}
        self.friends: set[UserId] = set()
        self.groups_created: list[tuple[int, GroupId]] = []
        self.groups: set[GroupId] = set()  # groups it is a member of
        self.joined: set[GroupId] = set()  # groups it joined by link since observation began


class _Group:
    __slots__ = ("creator", "members", "minors")

    def __init__(self, creator: UserId | None) -> None:
        self.creator = creator
        self.members: set[UserId] = set()
        self.minors = 0


class FeatureExtractor:
    """Incremental per-account feature state. Feed events with `observe`; read with `features`.

    Accounts must be registered (`register_account`) before events name them: the server always knows
    an account's facts, and guessing an unknown account's age band would be worse than refusing.
    """

    def __init__(self, *, window_days: int = 28, night_start_hour: int = 22, night_end_hour: int = 6) -> None:
        """Raises ValidationError on a non-positive window or an hour outside 0..23."""
        if window_days < 1:
            raise ValidationError("window_days must be >= 1")
        if not (0 <= night_start_hour < 24 and 0 <= night_end_hour < 24):
            raise ValidationError("night hours must be in 0..23")
        self.window_days = window_days
        self._night = (
            frozenset(h for h in range(24) if (h >= night_start_hour or h < night_end_hour))
            if night_start_hour > night_end_hour
            else frozenset(range(night_start_hour, night_end_hour))
        )
        self._accounts: dict[UserId, _Account] = {}
        self._groups: dict[GroupId, _Group] = {}
        self._dirty: set[UserId] = set()
        self._observed_since_ms = -(2**62)
        self._handlers: dict[type, Callable[[MetadataEvent], None]] = {
            MessageSent: self._on_message,  # type: ignore[dict-item]
            ContactRequestSent: self._on_request,  # type: ignore[dict-item]
            ContactRequestAnswered: self._on_answer,  # type: ignore[dict-item]
            Block: self._on_block,  # type: ignore[dict-item]
            ReportFiled: self._on_report,  # type: ignore[dict-item]
            GroupCreated: self._on_group_created,  # type: ignore[dict-item]
            GroupJoined: self._on_group_joined,  # type: ignore[dict-item]
            GroupMemberAdded: self._on_member_added,  # type: ignore[dict-item]
        }

    # ----------------------------------------------------------------------------------------- input
    def register_account(self, facts: AccountFacts) -> None:
        """Add an account (or update its facts, keeping its history)."""
        acct = self._accounts.get(facts.user)
        if acct is None:
            self._accounts[facts.user] = _Account(facts)
        else:
            acct.band, acct.minor, acct.created_ms = (
                facts.age_band,
                facts.age_band.is_minor,
                facts.created_at_ms,
            )

    def register_tie(self, a: UserId, b: UserId, since_ms: int) -> None:
        """An established connection (an accepted contact from before the events observed): history, so
        the first message over it in the window is not a new conversation. Raises ValidationError for an
        unregistered account."""
        acct_a, acct_b = self._account(a), self._account(b)
        if a == b:
            return
        for x, y_id in ((acct_a, b), (acct_b, a)):
            if y_id not in x.links:
                x.links[y_id] = _Link(since_ms, False)
        self._connect(a, acct_a, b, acct_b)

    def mark_history(self, now_ms: int) -> None:
        """Everything observed so far is history: ties stay (connected, not new), counters restart, and
        rates are per day observed since `now_ms` (so a fresh start is not diluted over the window)."""
        for acct in self._accounts.values():
            acct.hist.clear()
            acct.cur = [0] * _N_COUNTERS
            acct.day = -(2**62)
            acct.groups_created = []
            acct.joined = set()
            for link in acct.links.values():
                link.initiated = False
        self._observed_since_ms = now_ms
        self._dirty.clear()

    def observe(self, event: MetadataEvent) -> None:
        """Update state with one event. Raises ValidationError if it names an unregistered account."""
        try:
            self._handlers[type(event)](event)
        except KeyError as exc:
            raise ValidationError(f"event names an unregistered account: {exc}") from exc

    def emit(self, event: MetadataEvent) -> None:
        """`EventSink` protocol: the extractor can sit directly behind a producer."""
        self.observe(event)

    def observe_all(self, events: Iterable[MetadataEvent]) -> None:
        """Raises ValidationError as `observe`."""
        handlers = self._handlers
        try:
            for event in events:
                handlers[type(event)](event)
        except KeyError as exc:
            raise ValidationError(f"event names an unregistered account: {exc}") from exc

    def drain_dirty(self) -> set[UserId]:
        """Accounts whose own behaviour (or blocks/reports against them) changed since the last drain."""
        dirty, self._dirty = self._dirty, set()
        return dirty

    def accounts(self) -> list[UserId]:
        return list(self._accounts)

    def is_minor(self, user: UserId) -> bool:
        """Raises ValidationError for an unregistered account."""
        return self._account(user).minor

    def minors_contacted(self, user: UserId, now_ms: int) -> list[UserId]:
        """Minors `user` messaged or requested within the window: who a safety notice goes to."""
        start = self._window_start_ms(now_ms)
        accounts = self._accounts
        return [
            peer
            for peer, link in self._account(user).links.items()
            if link.last_out_ms >= start and accounts[peer].minor
        ]

    # ---------------------------------------------------------------------------------------- output
    def features(self, user: UserId, now_ms: int) -> FeatureVector:
        """Raises ValidationError for an unregistered account."""
        return FeatureVector(user, now_ms, tuple(self._compute(self._account(user), now_ms)))

    def feature_matrix(self, users: Sequence[UserId], now_ms: int) -> npt.NDArray[np.float64]:
        """Rows in `users` order, columns in `FEATURE_NAMES` order. Raises ValidationError as `features`."""
        out = np.empty((len(users), len(FEATURE_NAMES)), dtype=np.float64)
        for i, user in enumerate(users):
            out[i] = self._compute(self._account(user), now_ms)
        return out

    def prune(self, now_ms: int, retention_ms: int) -> int:
        """Forget links idle for longer than the retention limit; returns how many were dropped.

        Keeps state in step with the event log's retention: nothing derived outlives what it came from.
        """
        cutoff = now_ms - retention_ms
        dropped = 0
        for acct in self._accounts.values():
            stale = [p for p, ln in acct.links.items() if max(ln.last_out_ms, ln.first_ms) < cutoff]
            for peer in stale:
                del acct.links[peer]
                acct.friends.discard(peer)
            dropped += len(stale)
            acct.groups_created = [(t, g) for t, g in acct.groups_created if t >= cutoff]
        return dropped

    # ------------------------------------------------------------------------------------- internals
    def _account(self, user: UserId) -> _Account:
        acct = self._accounts.get(user)
        if acct is None:
            raise ValidationError(f"unknown account {user!r}")
        return acct

    def _window_start_ms(self, now_ms: int) -> int:
        return (now_ms // DAY_MS - self.window_days + 1) * DAY_MS

    def _roll(self, acct: _Account, day: int) -> list[int]:
        """The counter bucket for `day`, opening a new one (and expiring old ones) when the day moves on."""
        if day > acct.day:
            if any(acct.cur):
                acct.hist.append((acct.day, acct.cur))
            acct.day = day
            acct.cur = [0] * _N_COUNTERS
            oldest = day - self.window_days
            hist = acct.hist
            while hist and hist[0][0] <= oldest:
                hist.popleft()
            return acct.cur
        # A late event (producers across processes): count it on its own day if still held.
        for d, bucket in acct.hist:
            if d == day:
                return bucket
        return acct.cur

    def _initiate(self, acct: _Account, peer_id: UserId, peer: _Account, at: int, bucket: list[int]) -> _Link:
        """First-ever contact from `acct` to `peer`: open both sides' links and count the new conversation."""
        link = _Link(at, True)
        acct.links[peer_id] = link
        bucket[_NEW_CONV] += 1
        if peer.minor:
            bucket[_NEW_CONV_MINOR] += 1
            if acct.friends.isdisjoint(peer.friends):
                bucket[_NEW_MINOR_NO_MUTUAL] += 1
                if acct.groups.isdisjoint(peer.groups):
                    bucket[_NEW_MINOR_NO_CONTEXT] += 1
                elif not acct.joined.isdisjoint(peer.groups):
                    bucket[_NEW_MINOR_JOINED_GROUP] += 1
        return link

    @staticmethod
    def _connect(a_id: UserId, a: _Account, b_id: UserId, b: _Account) -> None:
        a.links[b_id].connected = True
        b.links[a_id].connected = True
        a.friends.add(b_id)
        b.friends.add(a_id)

    def _on_message(self, e: MessageSent) -> None:
        sender_id = e.sender
        s = self._accounts[sender_id]
        at = e.at_ms
        day = at // DAY_MS
        sb = s.cur if s.day == day else self._roll(s, day)
        self._dirty.add(sender_id)
        recipient_id = e.recipient
        if recipient_id is None:
            sb[_GROUP_SENT] += 1
            return
        r = self._accounts[recipient_id]
        link = s.links.get(recipient_id)
        if link is None:
            link = self._initiate(s, recipient_id, r, at, sb)
        back = r.links.get(sender_id)
        if back is None:
            back = r.links[sender_id] = _Link(at, False)
        link.sent += 1
        link.last_out_ms = at
        link.unanswered += 1
        back.received += 1
        back.last_in_ms = at
        back.unanswered = 0
        rb = r.cur if r.day == day else self._roll(r, day)
        sb[_SENT] += 1
        rb[_RECEIVED] += 1
        night = (at // HOUR_MS) % 24 in self._night
        if night:
            sb[_NIGHT] += 1
        media = e.content is not MessageKind.TEXT
        if r.minor:
            sb[_SENT_MINOR] += 1
            if link.initiated:
                sb[_SENT_NEW_MINOR] += 1
                if night:
                    sb[_NIGHT_NEW_MINOR] += 1
                if day != link.last_out_day:
                    link.last_out_day = day
                    link.out_days += 1
                    if link.out_days == _SUSTAINED_DAYS:
                        sb[_SUSTAINED_NEW_MINOR] += 1
                if (
                    link.unanswered >= _SILENT_MESSAGES
                    and not link.silent_seen
                    and at - max(link.last_in_ms, link.first_ms) >= _SILENT_MS
                ):
                    link.silent_seen = True
                    sb[_NEW_MINOR_SILENT] += 1
            if night:
                sb[_NIGHT_MINOR] += 1
            if media:
                sb[_MEDIA_MINOR] += 1
        if s.minor:
            rb[_RECEIVED_MINOR] += 1
            if (
                media
                and back.initiated
                and not back.early_media_seen
                and at - back.first_ms <= EARLY_MEDIA_MS
            ):
                back.early_media_seen = True
                rb[_EARLY_MEDIA_MINOR] += 1
                self._dirty.add(recipient_id)
        if not link.connected and link.received:
            self._connect(sender_id, s, recipient_id, r)

    def _on_request(self, e: ContactRequestSent) -> None:
        sid, rid = e.requester, e.recipient
        s, r = self._accounts[sid], self._accounts[rid]
        day = e.at_ms // DAY_MS
        sb = s.cur if s.day == day else self._roll(s, day)
        self._dirty.add(sid)
        link = s.links.get(rid)
        if link is None:
            link = self._initiate(s, rid, r, e.at_ms, sb)
        if rid not in r.links:
            r.links[sid] = _Link(e.at_ms, False)
        link.last_out_ms = e.at_ms
        sb[_REQ_SENT] += 1
        if r.minor:
            sb[_REQ_SENT_MINOR] += 1

    def _on_answer(self, e: ContactRequestAnswered) -> None:
        sid, rid = e.requester, e.recipient
        s, r = self._accounts[sid], self._accounts[rid]
        day = e.at_ms // DAY_MS
        sb = s.cur if s.day == day else self._roll(s, day)
        self._dirty.add(sid)
        if r.minor:
            sb[_REQ_MINOR_ANSWERED] += 1
            if e.outcome is not RequestOutcome.ACCEPTED:
                sb[_REQ_MINOR_REFUSED] += 1
        match e.outcome:
            case RequestOutcome.ACCEPTED:
                sb[_REQ_ACCEPTED] += 1
                if sid not in r.links:
                    r.links[sid] = _Link(e.at_ms, False)
                if rid not in s.links:
                    s.links[rid] = _Link(e.at_ms, True)
                self._connect(sid, s, rid, r)
            case RequestOutcome.DECLINED:
                sb[_REQ_DECLINED] += 1
            case RequestOutcome.IGNORED:
                sb[_REQ_IGNORED] += 1

    def _on_block(self, e: Block) -> None:
        blocker, blocked = self._accounts[e.blocker], self._accounts[e.blocked]
        day = e.at_ms // DAY_MS
        b = blocked.cur if blocked.day == day else self._roll(blocked, day)
        b[_BLOCKS] += 1
        if blocker.minor:
            b[_BLOCKS_MINOR] += 1
        self._dirty.add(e.blocked)
        # A block ends the connection: it must no longer vouch for the blocked account as a mutual contact.
        blocker.friends.discard(e.blocked)
        blocked.friends.discard(e.blocker)

    def _on_report(self, e: ReportFiled) -> None:
        reporter, reported = self._accounts[e.reporter], self._accounts[e.reported]
        day = e.at_ms // DAY_MS
        b = reported.cur if reported.day == day else self._roll(reported, day)
        b[_REPORTS] += 1
        if reporter.minor:
            b[_REPORTS_MINOR] += 1
        self._dirty.add(e.reported)

    def _group(self, gid: GroupId, creator: UserId | None = None) -> _Group:
        group = self._groups.get(gid)
        if group is None:
            # Unknown group: its creation fell out of retention. Track it without a creator.
            group = self._groups[gid] = _Group(creator)
        return group

    def _add_member(self, group: _Group, member_id: UserId, gid: GroupId) -> bool:
        if member_id in group.members:
            return False
        group.members.add(member_id)
        acct = self._accounts[member_id]
        acct.groups.add(gid)
        minor = acct.minor
        if minor:
            group.minors += 1
        return minor

    def _on_group_created(self, e: GroupCreated) -> None:
        acct = self._accounts[e.creator]
        group = self._group(e.group, e.creator)
        group.creator = e.creator
        self._add_member(group, e.creator, e.group)
        acct.groups_created.append((e.at_ms, e.group))
        self._dirty.add(e.creator)

    def _on_group_joined(self, e: GroupJoined) -> None:
        acct = self._accounts[e.member]
        group = self._group(e.group)
        had_minors = group.minors > 0
        self._add_member(group, e.member, e.group)
        acct.joined.add(e.group)
        if had_minors and not acct.minor:
            day = e.at_ms // DAY_MS
            b = acct.cur if acct.day == day else self._roll(acct, day)
            b[_JOINED_MINOR_GROUP] += 1
            self._dirty.add(e.member)

    def _on_member_added(self, e: GroupMemberAdded) -> None:
        adder = self._accounts[e.adder]
        self._accounts[e.member]
        if self._add_member(self._group(e.group), e.member, e.group):
            day = e.at_ms // DAY_MS
            b = adder.cur if adder.day == day else self._roll(adder, day)
            b[_MINORS_ADDED] += 1
            self._dirty.add(e.adder)

    def _compute(self, acct: _Account, now_ms: int) -> list[float]:
        window = self.window_days
        now_day = now_ms // DAY_MS
        first_day = now_day - window + 1
        buckets = [b for d, b in acct.hist if first_day <= d <= now_day]
        if first_day <= acct.day <= now_day:
            buckets.append(acct.cur)
        # Column sums with builtins: this runs for every scored account at every checkpoint.
        totals = [sum(column) for column in zip(*buckets, strict=True)] if buckets else [0] * _N_COUNTERS
        max_new = max((bucket[_NEW_CONV] for bucket in buckets), default=0)

        age_days = max(0.0, (now_ms - acct.created_ms) / DAY_MS)
        # Rates are per day of the window the account has existed (and been observed) for, so new
        # accounts and a fresh start are not diluted.
        observed_days = (now_ms - max(acct.created_ms, self._observed_since_ms)) / DAY_MS
        eff_days = min(float(window), max(1.0, observed_days))

        start_ms = first_day * DAY_MS
        accounts = self._accounts
        contacts = minors = unconnected = 0
        gap_sum = 0.0
        rank = _BAND_RANK[acct.band]
        for peer_id, link in acct.links.items():
            if link.last_out_ms < start_ms:
                continue
            peer = accounts[peer_id]
            contacts += 1
            if peer.minor:
                minors += 1
            if not link.connected:
                unconnected += 1
            gap_sum += abs(rank - _BAND_RANK[peer.band])

        groups = self._groups
        groups_with_minors = sum(
            1 for t, gid in acct.groups_created if t >= start_ms and groups[gid].minors > 0
        )
        sent, received = totals[_SENT], totals[_RECEIVED]
        sent_minor = totals[_SENT_MINOR]
        answered = totals[_REQ_ACCEPTED] + totals[_REQ_DECLINED] + totals[_REQ_IGNORED]
        req = totals[_REQ_SENT]
        new_minor = totals[_NEW_CONV_MINOR]
        return [
            age_days,
            0.0 if acct.minor else 1.0,
            sent / eff_days,
            float(contacts),
            float(minors),
            minors / contacts if contacts else 0.0,
            totals[_NEW_CONV] / eff_days,
            new_minor / eff_days,
            float(max_new),
            _smoothed(unconnected, contacts, _PRIOR_UNCONNECTED),
            _smoothed(totals[_NEW_MINOR_NO_MUTUAL], new_minor, _PRIOR_NO_MUTUAL),
            float(req),
            totals[_REQ_SENT_MINOR] / req if req else 0.0,
            _smoothed(totals[_REQ_DECLINED], answered, _PRIOR_DECLINE),
            _smoothed(totals[_REQ_IGNORED], answered, _PRIOR_IGNORE),
            float(totals[_BLOCKS]),
            float(totals[_BLOCKS_MINOR]),
            float(totals[_REPORTS]),
            float(totals[_REPORTS_MINOR]),
            (received + 1) / (sent + 1),
            (totals[_RECEIVED_MINOR] + 1) / (sent_minor + 1),
            gap_sum / contacts if contacts else 0.0,
            _smoothed(totals[_NIGHT], sent, _PRIOR_NIGHT),
            _smoothed(totals[_NIGHT_MINOR], sent_minor, _PRIOR_NIGHT),
            _smoothed(totals[_MEDIA_MINOR], sent_minor, _PRIOR_MEDIA),
            float(totals[_EARLY_MEDIA_MINOR]),
            float(groups_with_minors),
            float(totals[_MINORS_ADDED]),
            totals[_GROUP_SENT] / eff_days,
            float(totals[_JOINED_MINOR_GROUP]),
            _smoothed(totals[_NEW_MINOR_NO_CONTEXT], new_minor, _PRIOR_NO_MUTUAL),
            totals[_SENT_NEW_MINOR] / eff_days,
            float(totals[_SUSTAINED_NEW_MINOR]),
            float(totals[_NEW_MINOR_JOINED_GROUP]),
            _smoothed(totals[_NIGHT_NEW_MINOR], totals[_SENT_NEW_MINOR], _PRIOR_NIGHT),
            _smoothed(totals[_REQ_MINOR_REFUSED], totals[_REQ_MINOR_ANSWERED], _PRIOR_MINOR_REFUSAL),
            float(totals[_NEW_MINOR_SILENT]),
        ]

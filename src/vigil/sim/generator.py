"""Fast mode: turn a population into the metadata event stream the server would record, day by day.

The generator only ever emits `vigil.safety.behavior.events` through an `EventSink`, so the same agents can
later be replayed through the real server (which would emit the same events itself). Each simulated day's
events are generated, sorted and emitted before the next day starts; events that fall on a later day
(answers to requests, expiries) wait in a per-day queue. Protective actions feed back through
`Enforcement`: a restricted adult's contact with minors is refused, as the server would refuse it.

Joins by link go through the server's own rule (`vigil.safety.policy.decide_group_join`): a minor is in a
group only with adults they are connected to, so where the population puts a minor and an unknown adult in
one group, the later join is refused, counted in `refused` as server mode counts it, and the refused
account's share of the group's messages is not sent (`skipped`).

Every harmful act is also logged as an `Incident` (ground truth for `vigil.sim.score`). When a restricted
account goes on trying, the generator keeps drawing what it would have done with the same probabilities,
but emits none of its events (the server would refuse them) and logs the incidents as *prevented*.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from typing import NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from vigil.safety.behavior.events import (
    AccountFacts,
    AgeBand,
    Block,
    ContactRequestAnswered,
    ContactRequestSent,
    EventSink,
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
)
from vigil.safety.behavior.features import DAY_MS, HOUR_MS
from vigil.safety.policy import Standing, decide_group_join, restricted_meets_minor, unconnected_minor_adult
from vigil.sim.incidents import Incident, IncidentType
from vigil.sim.population import GroomerStyle, Population, Role
from vigil.sim.scenario import Scenario

__all__ = ["Enforcement", "EventGenerator", "NoEnforcement"]

MIN_MS = 60_000
_NIGHT_HOURS = np.array([22, 23, 0, 1, 2, 3, 4, 5])
_DAY_HOURS = np.arange(7, 22)
_DAY_WEIGHTS = np.linspace(1.0, 2.0, len(_DAY_HOURS)) / np.linspace(1.0, 2.0, len(_DAY_HOURS)).sum()
_KIND_BY_CODE = (MessageKind.TEXT, MessageKind.IMAGE, MessageKind.FILE)
_BUCKET_BY_CODE = (0, 4, 5)
_TEXT = MessageKind.TEXT
_IMAGE = MessageKind.IMAGE
IntArray = npt.NDArray[np.int64]
_BENIGN_ADULT_ROLES = frozenset({Role.ADULT, Role.PARENT, Role.RELATIVE, Role.COACH, Role.MENTOR})


class Enforcement(Protocol):
    def may_contact_minors(self, user: int) -> bool:
        """False once the account is restricted from contact with minors."""
        ...


class NoEnforcement:
    def may_contact_minors(self, user: int) -> bool:
        return True


class _Victim:
    __slots__ = ("accepted_at", "blocked", "escalate_at", "escalated", "given_up_at", "kid", "silent")

    def __init__(self, kid: int, accepted_at: int, escalate_at: int) -> None:
        self.kid = kid
        self.accepted_at = accepted_at
        self.escalate_at = escalate_at
        self.escalated = False
        self.blocked = False
        self.silent = False  # stopped answering once the conversation turned sexual
        self.given_up_at = -1  # when the abuser stops writing to a silent victim


class _GroomerPlan:
    """One groomer's habits, drawn from its style."""

    __slots__ = (
        "escalation_days",
        "group",
        "in_group",
        "joined_at",
        "messages_per_day",
        "night_share",
        "style",
        "targets",
    )

    def __init__(
        self,
        style: GroomerStyle,
        targets: float,
        messages_per_day: float,
        night_share: float,
        escalation_days: tuple[int, int],
    ) -> None:
        self.style = style
        self.targets = targets
        self.messages_per_day = messages_per_day
        self.night_share = night_share
        self.escalation_days = escalation_days
        self.group = -1  # interest group index for the group-first path
        self.joined_at = -1
        self.in_group = False  # the server let him in (`decide_group_join`)


class _Tending(NamedTuple):
    """How an abuser keeps up its private conversations with victims (groomers and insiders)."""

    messages_per_day: float
    reply_ratio: float
    night_share: float
    media_share: float
    victim_media_prob: float
    known_image_prob: float
    block_prob: float
    report_prob: float
    withdraw_prob: float = 0.0
    pursuit_days: tuple[int, int] = (0, 0)


class EventGenerator:
    """Generates the scenario's events. Pure given the RNG; all output goes to `sink`."""

    def __init__(
        self,
        sc: Scenario,
        pop: Population,
        rng: np.random.Generator,
        sink: EventSink,
        enforcement: Enforcement | None = None,
        *,
        apply_group_rule: bool = True,
    ) -> None:
        """`apply_group_rule`: decide joins by link with the server's rule here (fast mode); server mode
        passes False because the real server decides them."""
        self.sc, self.pop, self.rng, self.sink = sc, pop, rng, sink
        self.apply_group_rule = apply_group_rule
        self.enforcement: Enforcement = enforcement or NoEnforcement()
        self.ids = pop.ids
        self.start = sc.start_ms
        self.end = sc.start_ms + sc.days * DAY_MS
        n = len(pop.roles)
        self.harm_start: dict[int, int] = {}  # first contact request to a minor
        self.engaged: dict[int, int] = {}  # first time a minor accepted its contact
        self._pending: dict[int, list[MetadataEvent]] = {}
        self._today: list[MetadataEvent] = []
        self._day_end = 0
        self.minors = np.array([i for i, r in enumerate(pop.roles) if r is Role.MINOR], dtype=np.int64)
        self.older_minors = np.array(
            [i for i in self.minors.tolist() if pop.bands[i] is AgeBand.TEEN_16_17], dtype=np.int64
        )
        adult_roles = (
            Role.ADULT,
            Role.PARENT,
            Role.RELATIVE,
            Role.RING_MEMBER,
            Role.GROOMER,
            Role.COACH,
            Role.MENTOR,
            Role.INSIDER,
        )
        self.adults = np.array([i for i, r in enumerate(pop.roles) if r in adult_roles], dtype=np.int64)
        self.is_minor = np.array([r is Role.MINOR for r in pop.roles])

        # Static DM graph: every pre-existing tie except coach-pupil and mentor-pupil (their own agents
        # drive those). A coach who is an insider keeps coaching.
        coach = np.zeros(n, dtype=np.bool_)
        coach[[t.coach for t in pop.teams]] = True
        driven = coach.copy()
        driven[list(pop.mentor_pupils)] = True
        pairs = [
            (a, b)
            for a, b in pop.edges
            if not ((driven[a] and self.is_minor[b]) or (driven[b] and self.is_minor[a]))
        ]
        src = np.array([a for a, b in pairs] + [b for a, b in pairs], dtype=np.int64)
        dst = np.array([b for a, b in pairs] + [a for a, b in pairs], dtype=np.int64)
        order = np.argsort(src, kind="stable")
        self.adj = dst[order]
        self.deg = np.bincount(src, minlength=n).astype(np.int64)
        self.off = np.concatenate(([0], np.cumsum(self.deg)[:-1])).astype(np.int64)

        rate = np.where(self.is_minor, sc.minors.messages_per_day, sc.adults.messages_per_day)
        rate[
            [i for i, r in enumerate(pop.roles) if r is Role.SEXTORTION and i not in pop.aged_sextortion]
        ] = 0.0
        self.rate = rate
        ad = sc.adults
        # Habits overlap: some benign adults are night owls or send many pictures, as groomers do.
        owl = (~self.is_minor) & (rng.random(n) < ad.night_owl_share)
        heavy = (~self.is_minor) & (rng.random(n) < ad.heavy_media_share)
        self.night = np.where(
            self.is_minor, sc.minors.night_share, np.where(owl, ad.night_owl_night_share, ad.night_share)
        )
        self.night[coach] = sc.coaches.night_share
        self.media = np.where(
            self.is_minor, sc.minors.media_share, np.where(heavy, ad.heavy_media_media_share, ad.media_share)
        )
        self.media[coach] = sc.coaches.media_share
        pc = np.array(pop.parent_child, dtype=np.int64).reshape(-1, 2)
        self.pc_parent, self.pc_child = pc[:, 0], pc[:, 1]

        # Groups: (id, members, messages per day, media share, first sender weight for the creator).
        self.groups: list[tuple[GroupId, list[int], float, float]] = []
        self.ring_groups: set[GroupId] = set()
        self.interest_group_ids: list[GroupId] = []
        gb = sc.groomers
        self.plans: dict[int, _GroomerPlan] = {}
        for g, style in pop.groomer_style.items():
            match style:
                case GroomerStyle.PATIENT:
                    plan = _GroomerPlan(
                        style,
                        gb.new_targets_per_week / 4,
                        gb.messages_per_victim_per_day / 3,
                        ad.night_share * 2,
                        gb.patient_escalation_days,
                    )
                case GroomerStyle.GROUP_FIRST:
                    plan = _GroomerPlan(
                        style,
                        gb.new_targets_per_week / 2,
                        gb.messages_per_victim_per_day / 2,
                        (gb.night_share + ad.night_share) / 2,
                        gb.escalation_days,
                    )
                    plan.group = pop.group_first_group.get(g, -1)
                case GroomerStyle.ESCALATING | GroomerStyle.COLD:
                    plan = _GroomerPlan(
                        style,
                        gb.new_targets_per_week,
                        gb.messages_per_victim_per_day,
                        gb.night_share,
                        gb.escalation_days,
                    )
            self.plans[g] = plan
        self.groomers = sorted(self.plans)
        self.groomer_victims: dict[int, list[_Victim]] = {g: [] for g in self.groomers}
        self.contacted: dict[int, set[int]] = {}
        self.sextortion: dict[int, tuple[int, int]] = {}
        self.created = pop.created_ms.copy()
        self.modified = pop.modified_client
        self.activated: set[int] = set()
        self.incidents: list[Incident] = []
        self.prevented_requests: dict[int, int] = {}  # account -> contact requests to minors refused
        # Who is connected (an accepted contact request), for the minors' group rule: pre-existing ties,
        # then every acceptance the generator draws (counted from when it is drawn, not when it lands).
        self.connections: set[frozenset[int]] = {frozenset(e) for e in pop.edges}
        self.outside: dict[GroupId, set[int]] = {}  # generated members the group rule kept out
        self.refused: dict[str, int] = {}  # keyed as server mode keys the server's refusals
        self.skipped: dict[str, int] = {}
        self._suppress = False
        sx = sc.sextortion
        for i, role in enumerate(pop.roles):
            if role is Role.SEXTORTION and i not in pop.replaces:
                first = int(rng.integers(0, sc.days))
                length = int(rng.integers(sx.active_days[0], sx.active_days[1], endpoint=True))
                self.sextortion[i] = (first, first + length)
                if i in pop.aged_sextortion:
                    lo, hi = sx.aged_account_age_days
                else:
                    lo, hi = sx.account_age_days
                age = int(rng.integers(lo, hi, endpoint=True))
                self.created[i] = self.start + first * DAY_MS - age * DAY_MS - int(rng.integers(0, DAY_MS))
        self._team_joins: list[tuple[int, int]] = []
        self.pupils = {m: list(kids) for m, kids in pop.mentor_pupils.items()}
        # Mentors who follow safeguarding practice meet every new pupil's parent first.
        self.parent_in_loop = {
            m for m in sorted(pop.mentor_pupils) if rng.random() < sc.mentors.parent_in_loop_share
        }
        self._pupil_joins: list[tuple[int, int]] = []
        # Insiders turn on one or two of the minors they already know, from a day in the run on.
        self.insider_start: dict[int, int] = {
            who: int(rng.integers(0, max(1, sc.days - 1))) for who in pop.insider_minors
        }
        self.insider_victims: dict[int, list[_Victim]] = {who: [] for who in pop.insider_minors}

    # ------------------------------------------------------------------------------------- plumbing
    def account_facts(self) -> list[AccountFacts]:
        return [
            AccountFacts(self.ids[i], self.pop.bands[i], int(self.created[i])) for i in range(len(self.ids))
        ]

    def _log(
        self,
        kind: IncidentType,
        at: int,
        offender: int,
        victim: int | None,
        *,
        image: bool,
        hash_matchable: bool = False,
        sender: int | None = None,
        group: GroupId | None = None,
    ) -> None:
        if at >= self.end:
            return
        self.incidents.append(
            Incident(
                kind,
                at,
                self.ids[offender],
                None if victim is None else self.ids[victim],
                group,
                image,
                hash_matchable,
                (offender if sender is None else sender) in self.modified,
                self._suppress,
            )
        )

    def _active(self, who: int, at: int) -> bool:
        """A dormant replacement account comes into use once it exists and its original is restricted."""
        original = self.pop.replaces.get(who)
        if original is None or who in self.activated:
            return True
        if self.created[who] <= at and not self.enforcement.may_contact_minors(original):
            self.activated.add(who)
            return True
        return False

    def _push(self, ev: MetadataEvent) -> None:
        if self._suppress:
            return  # a restricted account's contact with minors: refused, never recorded
        at = ev.at_ms
        if at < self._day_end:
            self._today.append(ev)
        elif at < self.end:
            self._pending.setdefault((at - self.start) // DAY_MS, []).append(ev)

    def _times(self, n: int, base: int, night_share: float | npt.NDArray[np.float64]) -> IntArray:
        rng = self.rng
        night = rng.random(n) < night_share
        hours = np.where(
            night, rng.choice(_NIGHT_HOURS, size=n), rng.choice(_DAY_HOURS, size=n, p=_DAY_WEIGHTS)
        )
        return base + hours * HOUR_MS + rng.integers(0, HOUR_MS, size=n)

    def _kinds(self, n: int, media_share: float | npt.NDArray[np.float64]) -> IntArray:
        media = self.rng.random(n) < media_share
        return np.where(media, np.where(self.rng.random(n) < 0.85, 1, 2), 0)

    def _messages(self, times: IntArray, senders: IntArray, recipients: IntArray, kinds: IntArray) -> None:
        ids, push = self.ids, self._push
        for t, s, r, k in zip(
            times.tolist(), senders.tolist(), recipients.tolist(), kinds.tolist(), strict=True
        ):
            push(MessageSent(t, ids[s], ids[r], None, _BUCKET_BY_CODE[k], _KIND_BY_CODE[k]))

    def _dm(self, at: int, s: int, r: int, kind: MessageKind = _TEXT) -> None:
        self._push(MessageSent(at, self.ids[s], self.ids[r], None, 4 if kind is _IMAGE else 0, kind))

    def _request(self, at: int, s: int, r: int, outcome: RequestOutcome, answer_at: int) -> None:
        self._push(ContactRequestSent(at, self.ids[s], self.ids[r]))
        self._push(ContactRequestAnswered(answer_at, self.ids[s], self.ids[r], outcome))
        if outcome is RequestOutcome.ACCEPTED and not self._suppress:
            self.connections.add(frozenset((s, r)))

    def _may_join(self, who: int, gid: GroupId, members: Sequence[int]) -> bool:
        """Whether the server would let `who` join `gid` by link, `members` being those already in
        (`decide_group_join`); a refusal is counted as server mode counts it. Blocks between members are
        not checked (the generator does not track them per group)."""
        if not self.apply_group_rule:
            return True
        standing = Standing.ACTIVE if self.enforcement.may_contact_minors(who) else Standing.RESTRICTED
        minors = [m for m in members if self.is_minor[m]]
        adults = [m for m in members if not self.is_minor[m]]
        joiner_minor = bool(self.is_minor[who])
        refusal = decide_group_join(
            standing,
            group_has_minors=bool(minors),
            blocked_by_member=False,
            unconnected_minor_adult=unconnected_minor_adult(
                [who] if joiner_minor else minors, adults if joiner_minor else [who], self.connections
            )
            is not None,
            restricted_with_minor=restricted_meets_minor(
                newcomer_is_minor=joiner_minor,
                newcomer_standing=standing,
                group_has_minors=bool(minors),
                group_has_restricted=any(not self.enforcement.may_contact_minors(m) for m in members),
            ),
        )
        if refusal is None:
            return True
        self.outside.setdefault(gid, set()).add(who)
        key = "group_joined:policy_violation"
        self.refused[key] = self.refused.get(key, 0) + 1
        return False

    def _block(self, at: int, blocker: int, blocked: int, report: ReportReason | None) -> None:
        self._push(Block(at, self.ids[blocker], self.ids[blocked]))
        if report is not None:
            self._push(ReportFiled(at + MIN_MS, self.ids[blocker], self.ids[blocked], report))

    def _outcome(self, accept: float, decline: float) -> RequestOutcome:
        u = self.rng.random()
        if u < accept:
            return RequestOutcome.ACCEPTED
        return RequestOutcome.DECLINED if u < accept + decline else RequestOutcome.IGNORED

    def _answer_delay(self, outcome: RequestOutcome) -> int:
        if outcome is RequestOutcome.IGNORED:
            return 3 * DAY_MS  # requests expire unanswered after three days
        return int(self.rng.integers(10 * MIN_MS, 20 * HOUR_MS))

    def _flush(self) -> int:
        events = self._today
        events.sort(key=attrgetter("at_ms"))
        emit = self.sink.emit
        for ev in events:
            emit(ev)
        self._today = []
        return len(events)

    # -------------------------------------------------------------------------------------- history
    def emit_history(self) -> int:
        """Pre-existing ties and groups, dated before day 0, and the ties of accounts that join during the
        run (dated just after they join). Returns the number of events emitted before day 0."""
        rng, pop = self.rng, self.pop
        lo_all = self.start - self.sc.history_days * DAY_MS
        self._day_end = self.start
        created = self.created
        for a, b in pop.edges:
            joined = max(int(created[a]), int(created[b]))
            if joined >= self.start:
                # A new account's ties form over its first two days (the server would see them as new).
                t = joined + int(rng.integers(10 * MIN_MS, 2 * DAY_MS))
                self._request(t, a, b, RequestOutcome.ACCEPTED, t + int(rng.integers(MIN_MS, 6 * HOUR_MS)))
                continue
            lo = max(lo_all, joined)
            t = int(rng.integers(lo, self.start - HOUR_MS))
            self._request(
                t, a, b, RequestOutcome.ACCEPTED, min(t + int(rng.integers(MIN_MS, HOUR_MS)), self.start - 1)
            )

        def group(
            gid: GroupId,
            creator: int,
            members: Sequence[int],
            rate: float,
            media: float,
            by_link: bool = False,
        ) -> None:
            t = max(int(rng.integers(lo_all, self.start - 2 * HOUR_MS)), int(created[creator]) + HOUR_MS)
            self._push(GroupCreated(t, self.ids[creator], gid))
            admitted = [creator]
            for m in members:
                if m == creator:
                    continue
                at = max(t + MIN_MS, int(created[m]) + DAY_MS)
                if by_link:
                    # Joins in the population's order (adults first), as the server sees them.
                    if self._may_join(m, gid, admitted):
                        admitted.append(m)
                        self._push(GroupJoined(at, self.ids[m], gid))
                else:
                    self._push(GroupMemberAdded(at, self.ids[creator], self.ids[m], gid))
            self.groups.append((gid, list(members), rate, media))

        for j, (creator, members) in enumerate(pop.class_groups):
            group(GroupId(f"g-class-{j}"), creator, members, self.sc.minors.class_group_messages_per_day, 0.1)
        for j, (creator, members) in enumerate(pop.family_groups):
            group(GroupId(f"g-family-{j}"), creator, members, 1.0, 0.2)
        for team in pop.teams:
            group(
                team.group,
                team.coach,
                [team.coach, *team.members],
                self.sc.coaches.group_messages_per_day,
                0.1,
            )
        for j, ring in enumerate(pop.rings):
            rate = self.sc.rings.images_per_member_per_day * len(ring)
            gid = GroupId(f"g-ring-{j}")
            self.ring_groups.add(gid)
            group(gid, ring[0], ring, rate, 1.0)
        gs = self.sc.groups
        for j, members in enumerate(pop.interest_groups):
            gid = GroupId(f"g-interest-{j}")
            self.interest_group_ids.append(gid)
            group(gid, members[0], members, gs.interest_messages_per_day, 0.15, by_link=True)
        for j, members in enumerate(pop.adult_groups):
            group(
                GroupId(f"g-hobby-{j}"),
                members[0],
                members,
                gs.adult_group_messages_per_day,
                0.15,
                by_link=True,
            )
        return self._flush()

    # ------------------------------------------------------------------------------------------ days
    def run_day(self, day: int) -> int:
        """Generate and emit day `day` (0-based). Returns the number of events emitted."""
        base = self.start + day * DAY_MS
        self._day_end = base + DAY_MS
        self._today = self._pending.pop(day, [])
        for coach_idx, kid in self._team_joins:
            team = next(t for t in self.pop.teams if t.coach == coach_idx)
            team.members.append(kid)
        self._team_joins = []
        for mentor, kid in self._pupil_joins:
            self.pupils[mentor].append(kid)
        self._pupil_joins = []
        self._benign_dms(base)
        self._group_messages(base)
        self._benign_new_ties(base)
        self._coaches(base)
        self._mentors(base)
        self._groomers(base)
        self._insiders(day, base)
        self._sextortion(day, base)
        return self._flush()

    def _benign_dms(self, base: int) -> None:
        rng = self.rng
        counts = rng.poisson(self.rate * (self.deg > 0))
        senders = np.repeat(np.arange(len(counts)), counts)
        pick = (rng.random(len(senders)) * self.deg[senders]).astype(np.int64)
        recipients = self.adj[self.off[senders] + pick]
        n = len(senders)
        times = self._times(n, base, self.night[senders])
        kinds = self._kinds(n, self.media[senders])
        # Accounts that join during the run only write (and are written to) once they exist and are tied.
        ready = self.created + 3 * DAY_MS
        live = (ready[senders] <= times) & (ready[recipients] <= times)
        self._messages(times[live], senders[live], recipients[live], kinds[live])
        # Parents and children write to each other on top of the general chatter.
        rate = self.sc.families.messages_to_child_per_day
        for a, b, r in ((self.pc_parent, self.pc_child, rate), (self.pc_child, self.pc_parent, 0.8 * rate)):
            c = rng.poisson(r, size=len(a))
            s, d = np.repeat(a, c), np.repeat(b, c)
            self._messages(self._times(len(s), base, 0.03), s, d, self._kinds(len(s), 0.1))

    def _group_messages(self, base: int) -> None:
        rng, ids = self.rng, self.ids
        for gid, members, rate, media in self.groups:
            n = int(rng.poisson(rate))
            if not n:
                continue
            times = self._times(n, base, 0.08).tolist()
            kinds = self._kinds(n, media).tolist()
            who = rng.integers(0, len(members), size=n).tolist()
            ring = gid in self.ring_groups
            known = self.sc.rings.known_image_share
            outside = self.outside.get(gid, ())
            for t, k, w in zip(times, kinds, who, strict=True):
                sender = members[w]
                if self.created[sender] + DAY_MS > t:
                    continue
                if sender in outside:
                    # Drawn as server mode draws it; the server would refuse it (not a member).
                    self.skipped["msg:not_in_group"] = self.skipped.get("msg:not_in_group", 0) + 1
                    continue
                self._push(MessageSent(t, ids[sender], None, gid, _BUCKET_BY_CODE[k], _KIND_BY_CODE[k]))
                if ring and k == 1:
                    self._log(
                        IncidentType.RING_DISTRIBUTION,
                        t,
                        sender,
                        None,
                        image=True,
                        hash_matchable=bool(rng.random() < known),
                        group=gid,
                    )

    def _benign_new_ties(self, base: int) -> None:
        rng, ad = self.rng, self.sc.adults
        plans = (
            (self.minors, self.minors, self.sc.minors.requests_per_week),
            (self.adults, self.adults, ad.stranger_requests_per_week),
        )
        for who, targets, per_week in plans:
            if not len(who) or not len(targets):
                continue
            k = int(rng.binomial(len(who), min(1.0, per_week / 7)))
            for s, r, t in zip(
                rng.choice(who, size=k).tolist(),
                rng.choice(targets, size=k).tolist(),
                self._times(k, base, 0.05).tolist(),
                strict=True,
            ):
                if s == r:
                    continue
                outcome = self._outcome(ad.stranger_accept_prob, ad.stranger_decline_prob)
                ta = t + self._answer_delay(outcome)
                self._request(t, s, r, outcome, ta)
                if outcome is RequestOutcome.ACCEPTED:
                    for j in range(int(rng.poisson(3))):
                        self._dm(ta + (j + 1) * 7 * MIN_MS, s, r)
                        self._dm(ta + (j + 1) * 7 * MIN_MS + MIN_MS, r, s)
        # Benign adults reaching a minor they know through a friend (a neighbour's or godchild's account):
        # through the child's parent, so they share a contact, and mostly accepted.
        k = int(rng.binomial(len(self.adults), min(1.0, ad.new_minor_contacts_per_week / 7)))
        for a, t in zip(
            rng.choice(self.adults, size=k).tolist(), self._times(k, base, 0.05).tolist(), strict=True
        ):
            if self.pop.roles[a] not in _BENIGN_ADULT_ROLES or not self.deg[a] or self.created[a] > t:
                continue
            friends = self.adj[self.off[a] : self.off[a] + self.deg[a]].tolist()
            kids = [kid for f in friends for kid in self.pop.children_of.get(f, []) if kid != a]
            if not kids:
                continue
            kid = kids[int(rng.integers(len(kids)))]
            outcome = self._outcome(0.85, 0.05)
            ta = t + self._answer_delay(outcome)
            self._request(t, a, kid, outcome, ta)
            if outcome is RequestOutcome.ACCEPTED:
                for j in range(int(rng.poisson(2))):
                    self._dm(ta + (j + 1) * 11 * MIN_MS, a, kid)
                    self._dm(ta + (j + 1) * 11 * MIN_MS + 2 * MIN_MS, kid, a)
        # Adults join interest groups (with minors in them) by link during the run.
        gs = self.sc.groups
        if self.interest_group_ids:
            k = int(rng.binomial(len(self.adults), min(1.0, gs.joins_per_week / 7)))
            for a, t in zip(
                rng.choice(self.adults, size=k).tolist(), self._times(k, base, 0.05).tolist(), strict=True
            ):
                if self.pop.roles[a] in _BENIGN_ADULT_ROLES and self.created[a] <= t:
                    self._join_interest_group(a, int(rng.integers(len(self.interest_group_ids))), t)
        # Club leaders and other members of interest groups reach minors they share only the group with:
        # no mutual contact, like a group-first groomer.
        rate = min(1.0, gs.member_minor_requests_per_week / 7)
        for gid, members, _rate, _media in self.groups:
            if not gid.startswith("g-interest-") or rate <= 0:
                continue
            outside = self.outside.get(gid, ())
            grown = [m for m in members if self.pop.roles[m] in _BENIGN_ADULT_ROLES and m not in outside]
            young = [m for m in members if self.is_minor[m] and m not in outside]
            if not grown or not young:
                continue
            for a in [m for m in grown if rng.random() < rate]:
                t = int(self._times(1, base, 0.05)[0])
                kid = young[int(rng.integers(len(young)))]
                if self.created[a] > t:
                    continue
                outcome = self._outcome(gs.member_minor_accept_prob, (1 - gs.member_minor_accept_prob) / 2)
                ta = t + self._answer_delay(outcome)
                self._request(t, a, kid, outcome, ta)
                if outcome is RequestOutcome.ACCEPTED:
                    for j in range(int(rng.poisson(2))):
                        self._dm(ta + (j + 1) * 13 * MIN_MS, a, kid)
                        self._dm(ta + (j + 1) * 13 * MIN_MS + 3 * MIN_MS, kid, a)
        # Ordinary friction: someone blocks a contact now and then.
        everyone = np.concatenate((self.minors, self.adults))
        k = int(rng.binomial(len(everyone), min(1.0, ad.block_prob_per_week / 7)))
        for s, t in zip(
            rng.choice(everyone, size=k).tolist(), self._times(k, base, 0.1).tolist(), strict=True
        ):
            if self.deg[s]:
                r = int(self.adj[self.off[s] + int(rng.integers(self.deg[s]))])
                self._block(t, s, r, ReportReason.HARASSMENT if rng.random() < 0.2 else None)

    def _join_interest_group(self, who: int, index: int, at: int) -> bool:
        """`who` joins interest group `index` by link at `at`; False when the server's rule refuses it
        (or `who` was refused before: a closed path is not retried, as a declined request is not)."""
        gid = self.interest_group_ids[index]
        for group_id, members, _rate, _media in self.groups:
            if group_id == gid:
                outside = self.outside.get(gid, set())
                if who in outside:
                    return False
                if who not in members:
                    if not self._may_join(who, gid, [m for m in members if m not in outside]):
                        members.append(who)  # still drawn as a sender, as server mode draws it
                        return False
                    members.append(who)
                    self._push(GroupJoined(at, self.ids[who], gid))
                return True
        return False

    def _interest_minors(self, index: int) -> list[int]:
        """The minors the server let into interest group `index`."""
        gid = self.interest_group_ids[index]
        for group_id, members, _rate, _media in self.groups:
            if group_id == gid:
                outside = self.outside.get(gid, ())
                return [m for m in members if self.is_minor[m] and m not in outside]
        return []

    def _coaches(self, base: int) -> None:
        rng, co, pop = self.rng, self.sc.coaches, self.pop
        for team in pop.teams:
            c = team.coach
            if rng.random() < co.new_members_per_week / 7 and self.enforcement.may_contact_minors(c):
                kid = self._new_team_member(team.school, team.members)
                if kid is not None and kid not in team.member_set:
                    team.member_set.add(kid)
                    t = int(self._times(1, base, 0.0)[0])
                    for par in pop.parents_of.get(kid, []):
                        if rng.random() < co.parent_first_prob:
                            self._request(t - HOUR_MS, c, par, RequestOutcome.ACCEPTED, t - 30 * MIN_MS)
                    outcome = self._outcome(co.accept_prob, (1 - co.accept_prob) / 2)
                    ta = t + self._answer_delay(outcome)
                    self._request(t, c, kid, outcome, ta)
                    if outcome is RequestOutcome.ACCEPTED:
                        self._push(GroupMemberAdded(ta + 5 * MIN_MS, self.ids[c], self.ids[kid], team.group))
                        self._team_joins.append((c, kid))
            if not team.members:
                continue
            members = np.array(team.members, dtype=np.int64)
            n = int(rng.poisson(len(members) * co.messages_per_member_per_day))
            self._session(
                c, rng.choice(members, size=n), self._times(n, base, co.night_share), co.media_share, 0.7
            )

    def _mentors(self, base: int) -> None:
        """Tutors, youth workers, new-club coaches: each week a new pupil or member they share no contact
        with (sometimes met through a parent, sometimes in an interest group joined by link, as a group-first
        groomer would), then regular daytime sessions. Benign: this is the honest hard case for features
        that count new contact with unknown minors."""
        rng, mc = self.rng, self.sc.mentors
        for m, pupils in self.pupils.items():
            if self.created[m] > base:
                continue
            allowed = self.enforcement.may_contact_minors(m)
            if allowed and len(self.minors) and rng.random() < mc.new_minors_per_week / 7:
                t = int(self._times(1, base, 0.0)[0])
                kid = -1
                if self.interest_group_ids and rng.random() < mc.via_group_share:
                    index = int(rng.integers(len(self.interest_group_ids)))
                    joined = self._join_interest_group(m, index, t - 2 * HOUR_MS)
                    young = self._interest_minors(index) if joined else []
                    if young:
                        kid = young[int(rng.integers(len(young)))]
                if kid < 0:
                    kid = int(rng.choice(self.minors))
                if kid not in pupils:
                    parent_first = 1.0 if m in self.parent_in_loop else mc.parent_first_prob
                    for par in self.pop.parents_of.get(kid, [])[:1]:
                        if rng.random() < parent_first:
                            self._request(t - HOUR_MS, m, par, RequestOutcome.ACCEPTED, t - 30 * MIN_MS)
                    outcome = self._outcome(mc.accept_prob, (1 - mc.accept_prob) / 2)
                    ta = t + self._answer_delay(outcome)
                    self._request(t, m, kid, outcome, ta)
                    if outcome is RequestOutcome.ACCEPTED:
                        for j in range(1 + int(rng.poisson(2))):
                            self._dm(ta + (j + 1) * 9 * MIN_MS, m, kid)
                            self._dm(ta + (j + 1) * 9 * MIN_MS + 2 * MIN_MS, kid, m)
                        self._pupil_joins.append((m, kid))
            if not pupils or not allowed:
                continue
            to = np.array(pupils, dtype=np.int64)
            n = int(rng.poisson(len(to) * mc.messages_per_pupil_per_day))
            self._session(
                m,
                rng.choice(to, size=n),
                self._times(n, base, mc.night_share),
                mc.media_share,
                mc.pupil_reply_ratio,
            )

    def _session(
        self, adult: int, to: IntArray, times: IntArray, media_share: float, reply_ratio: float
    ) -> None:
        """An adult's messages to pupils or team members, each answered by the child it went to (with
        probability `reply_ratio`, within the hour; above 1, some get two answers)."""
        rng, n = self.rng, len(to)
        self._messages(times, np.full(n, adult), to, self._kinds(n, media_share))
        answers = rng.poisson(reply_ratio, size=n) if reply_ratio > 1 else (rng.random(n) < reply_ratio)
        answers = np.asarray(answers, dtype=np.int64)
        frm = np.repeat(to, answers)
        at = np.repeat(times, answers) + rng.integers(MIN_MS, HOUR_MS, size=len(frm))
        self._messages(at, frm, np.full(len(frm), adult), self._kinds(len(frm), 0.05))

    def _insiders(self, day: int, base: int) -> None:
        """Relatives and coaches who abuse a tie they already have: no request, no new contact; the
        conversation with one or two minors they know intensifies, moves toward the night and escalates."""
        rng, ins = self.rng, self.sc.insiders
        tending = _Tending(
            ins.messages_per_victim_per_day,
            ins.victim_reply_ratio,
            ins.night_share,
            ins.media_share,
            ins.victim_media_prob_per_day,
            0.0,
            ins.block_prob_per_day,
            ins.report_prob,
        )
        for who, first in self.insider_start.items():
            if day < first:
                continue
            victims = self.insider_victims[who]
            known = self.pop.insider_minors[who]
            if day == first and known:
                k = min(len(known), int(rng.integers(ins.victims[0], ins.victims[1], endpoint=True)))
                t = int(self._times(1, base, 0.0)[0])
                lo, hi = ins.escalation_days
                for kid in rng.choice(known, size=k, replace=False).tolist():
                    victims.append(_Victim(int(kid), t, t + int(rng.integers(lo * DAY_MS, hi * DAY_MS + 1))))
                if victims and self.enforcement.may_contact_minors(who):
                    self.harm_start[who] = t
                    self.engaged[who] = t
            self._suppress = not self.enforcement.may_contact_minors(who)
            try:
                self._tend(who, victims, base, base + DAY_MS, tending)
            finally:
                self._suppress = False

    def _new_team_member(self, school: int, members: list[int]) -> int | None:
        rng = self.rng
        if rng.random() < self.sc.coaches.cross_school_share or not members:
            return int(rng.choice(self.minors)) if len(self.minors) else None
        # Kids join with their friends: look among a current member's friends at the same school.
        m = members[int(rng.integers(len(members)))]
        friends = self.adj[self.off[m] : self.off[m] + self.deg[m]]
        friends = friends[(self.pop.school_of[friends] == school)]
        if len(friends):
            return int(rng.choice(friends))
        pool = self.minors[self.pop.school_of[self.minors] == school]
        return int(rng.choice(pool)) if len(pool) else None

    def _groomers(self, base: int) -> None:
        gb = self.sc.groomers
        day_end = base + DAY_MS
        day = (base - self.start) // DAY_MS
        if not len(self.minors):
            return
        for g in self.groomers:
            if not self._active(g, day_end):
                continue
            plan = self.plans[g]
            # A restricted account goes on trying; none of it reaches the server (or a minor).
            self._suppress = not self.enforcement.may_contact_minors(g)
            try:
                self._groom(g, plan, base, day, day_end, gb.accept_prob)
            finally:
                self._suppress = False

    def _groom(self, g: int, plan: _GroomerPlan, base: int, day: int, day_end: int, accept: float) -> None:
        rng, gb = self.rng, self.sc.groomers
        victims = self.groomer_victims[g]
        contacted = self.contacted.setdefault(g, set())
        targets = plan.targets
        pool: list[int] | None = None
        if plan.style is GroomerStyle.GROUP_FIRST and plan.group >= 0:
            if plan.joined_at < 0:
                # Joins the group early in the run and lurks a day or two before approaching anyone.
                plan.joined_at = base + int(rng.integers(0, DAY_MS))
                plan.in_group = not self._suppress and self._join_interest_group(
                    g, plan.group, plan.joined_at
                )
            if plan.in_group:
                if base < plan.joined_at + DAY_MS:
                    targets = 0.0
                pool = self._interest_minors(plan.group)
            if pool:
                accept = gb.group_first_accept_prob
            # Refused (the group holds minors who do not know him) or in a group with no minors: the
            # path is closed, as after a declined request; he goes on with cold requests at `accept_prob`.
        elif plan.style is GroomerStyle.ESCALATING:
            targets = plan.targets * (0.25 + 0.5 * day / 7)
        for t in self._times(int(rng.poisson(targets / 7)), base, plan.night_share).tolist():
            kid = int(rng.choice(pool)) if pool and rng.random() < 0.8 else self._groomer_target(victims)
            if kid in contacted:
                continue
            contacted.add(kid)
            if rng.random() < gb.social_proof_prob:
                t = self._social_proof(g, kid, t, accept, gb.decline_prob, contacted)
            self._minor_requested(g, t)
            outcome = self._outcome(accept, gb.decline_prob)
            ta = t + self._answer_delay(outcome)
            self._request(t, g, kid, outcome, ta)
            if outcome is RequestOutcome.ACCEPTED:
                if not self._suppress:
                    self.engaged[g] = min(ta, self.engaged.get(g, ta))
                lo, hi = plan.escalation_days
                escalate = ta + int(rng.integers(lo * DAY_MS, hi * DAY_MS + 1))
                victims.append(_Victim(kid, ta, escalate))
            elif rng.random() < gb.block_on_request_prob:
                self._block(
                    ta + MIN_MS, kid, g, ReportReason.GROOMING if rng.random() < gb.report_prob else None
                )
        self._tend(
            g,
            victims,
            base,
            day_end,
            _Tending(
                plan.messages_per_day,
                gb.victim_reply_ratio,
                plan.night_share,
                gb.media_share,
                gb.victim_media_prob_per_day,
                gb.known_image_prob_per_day,
                gb.block_prob_per_day,
                gb.report_prob,
                gb.withdraw_prob,
                gb.pursuit_days,
            ),
        )

    def _minor_requested(self, who: int, t: int) -> None:
        if self._suppress:
            self.prevented_requests[who] = self.prevented_requests.get(who, 0) + 1
        else:
            self.harm_start[who] = min(t, self.harm_start.get(who, t))

    def _social_proof(
        self, who: int, kid: int, t: int, accept: float, decline: float, contacted: set[int]
    ) -> int:
        """Befriend a few of the target's friends first, so the target sees mutual contacts ("social
        proof"): documented for sextortion accounts and for groomers working through a friend group.
        Returns when to approach the target: after the last friend who accepted (within the day), or `t`."""
        rng = self.rng
        ties = self.adj[self.off[kid] : self.off[kid] + self.deg[kid]]
        friends = [int(f) for f in ties[self.is_minor[ties]].tolist() if int(f) not in contacted]
        if not friends:
            return t
        lo, hi = self.sc.groomers.social_proof_peers
        k = min(len(friends), int(rng.integers(lo, hi, endpoint=True)))
        target_at = t
        for peer in rng.choice(friends, size=k, replace=False).tolist():
            contacted.add(peer)
            self._minor_requested(who, t)
            outcome = self._outcome(accept, decline)
            ta = t + self._answer_delay(outcome)
            self._request(t, who, peer, outcome, ta)
            if outcome is RequestOutcome.ACCEPTED:
                self._dm(ta + 5 * MIN_MS, who, peer)
                self._dm(ta + 9 * MIN_MS, peer, who)
                target_at = max(target_at, ta + int(rng.integers(10 * MIN_MS, 2 * HOUR_MS)))
            elif rng.random() < self.sc.groomers.block_on_request_prob:
                self._block(ta + MIN_MS, peer, who, None)
        # The approach stays within the day it was decided on: tomorrow the account may be restricted
        # (a friend who accepts later than that is no mutual contact yet when the target is asked).
        return max(t, min(target_at, self._day_end - MIN_MS))

    def _tend(self, g: int, victims: list[_Victim], base: int, day_end: int, p: _Tending) -> None:
        """A day of an abuser's private conversations with its victims: messages both ways, escalation
        (enticement), coerced and known images, and the victim's block (with a report, sometimes)."""
        rng = self.rng
        for v in victims:
            if v.blocked or v.accepted_at >= day_end or 0 <= v.given_up_at < base:
                continue
            lo = max(base, v.accepted_at + MIN_MS)
            n = int(rng.poisson(p.messages_per_day))
            times = np.maximum(self._times(n, base, p.night_share), lo)
            self._messages(times, np.full(n, g), np.full(n, v.kid), self._kinds(n, p.media_share))
            m = 0 if v.silent else int(rng.poisson(n * p.reply_ratio))
            replies = np.maximum(self._times(m, base, p.night_share), lo + MIN_MS)
            if v.escalate_at < day_end:
                at = max(lo, v.escalate_at, int(self._times(1, base, p.night_share)[0]))
                if not v.escalated:
                    v.escalated = True
                    self._dm(at, g, v.kid)
                    self._log(IncidentType.ENTICEMENT, at, g, v.kid, image=False)
                    if rng.random() < p.withdraw_prob:
                        # Most minors who are sexually solicited end the contact; many just stop
                        # answering. The abuser goes on writing for a few days, then gives up.
                        v.silent = True
                        lo_d, hi_d = p.pursuit_days
                        v.given_up_at = at + int(rng.integers(lo_d * DAY_MS, hi_d * DAY_MS + 1))
                        replies = replies[replies < at]  # nothing from the victim after the turn
                if not v.silent and rng.random() < p.victim_media_prob:
                    self._dm(at + MIN_MS, v.kid, g, _IMAGE)
                    self._log(IncidentType.COERCED_NEW_IMAGE, at + MIN_MS, g, v.kid, image=True, sender=v.kid)
                if rng.random() < p.known_image_prob:
                    self._dm(at + 2 * MIN_MS, g, v.kid, _IMAGE)
                    self._log(
                        IncidentType.KNOWN_IMAGE_SHARED,
                        at + 2 * MIN_MS,
                        g,
                        v.kid,
                        image=True,
                        hash_matchable=True,
                    )
            k = len(replies)
            self._messages(replies, np.full(k, v.kid), np.full(k, g), np.zeros(k, dtype=np.int64))
            if rng.random() < p.block_prob:
                v.blocked = True
                at = max(lo, int(self._times(1, base, p.night_share)[0]))
                reason = ReportReason.GROOMING if v.escalated and rng.random() < p.report_prob else None
                if reason is None and rng.random() < p.report_prob / 3:
                    reason = ReportReason.HARASSMENT  # an early block rarely names grooming
                self._block(at, v.kid, g, reason)

    def _groomer_target(self, victims: list[_Victim]) -> int:
        rng = self.rng
        if victims and rng.random() < self.sc.groomers.snowball_share:
            v = victims[int(rng.integers(len(victims)))].kid
            friends = self.adj[self.off[v] : self.off[v] + self.deg[v]]
            friends = friends[self.is_minor[friends]]
            if len(friends):
                return int(rng.choice(friends))
        return int(rng.choice(self.minors))

    def _sextortion(self, day: int, base: int) -> None:
        rng, sx = self.rng, self.sc.sextortion
        pool = self.older_minors if len(self.older_minors) else self.minors
        if not len(pool):
            return
        for spare in self.pop.replaces:
            if (
                spare not in self.sextortion
                and self.pop.roles[spare] is Role.SEXTORTION
                and self._active(spare, base + DAY_MS)
            ):
                length = int(rng.integers(sx.active_days[0], sx.active_days[1], endpoint=True))
                self.sextortion[spare] = (day, day + length)
        for a, (first, last) in self.sextortion.items():
            if not first <= day < last:
                continue
            self._suppress = not self.enforcement.may_contact_minors(a)
            try:
                self._extort(a, base, pool)
            finally:
                self._suppress = False

    def _extort(self, a: int, base: int, pool: IntArray) -> None:
        rng, sx = self.rng, self.sc.sextortion
        contacted = self.contacted.setdefault(a, set())
        lo = max(base, int(self.created[a]) + MIN_MS)
        for t in np.maximum(self._times(int(rng.poisson(sx.targets_per_day)), base, 0.25), lo).tolist():
            kid = int(rng.choice(pool)) if rng.random() < 0.7 else int(rng.choice(self.minors))
            if kid in contacted:
                continue
            contacted.add(kid)
            if rng.random() < sx.social_proof_prob:
                t = self._social_proof(a, kid, t, sx.accept_prob, sx.decline_prob, contacted)
            self._minor_requested(a, t)
            outcome = self._outcome(sx.accept_prob, sx.decline_prob)
            ta = t + self._answer_delay(outcome)
            self._request(t, a, kid, outcome, ta)
            if outcome is not RequestOutcome.ACCEPTED:
                if rng.random() < sx.block_on_request_prob:
                    reason = ReportReason.SEXTORTION if rng.random() < sx.report_prob else None
                    self._block(ta + MIN_MS, kid, a, reason)
                continue
            if not self._suppress:
                self.engaged[a] = min(ta, self.engaged.get(a, ta))
            # The burst: messages and images within hours of acceptance, a quick ask for images back.
            n = int(rng.poisson(sx.messages_per_victim))
            times = ta + rng.integers(MIN_MS, 12 * HOUR_MS, size=n)
            self._messages(times, np.full(n, a), np.full(n, kid), self._kinds(n, sx.media_share))
            m = int(rng.poisson(0.5 * n))
            self._messages(
                ta + rng.integers(MIN_MS, 12 * HOUR_MS, size=m),
                np.full(m, kid),
                np.full(m, a),
                np.zeros(m, dtype=np.int64),
            )
            ask = ta + int(rng.integers(10 * MIN_MS, 6 * HOUR_MS))
            self._log(IncidentType.ENTICEMENT, ask, a, kid, image=False)
            if rng.random() < sx.victim_media_prob:
                sent = ask + int(rng.integers(10 * MIN_MS, 6 * HOUR_MS))
                self._dm(sent, kid, a, _IMAGE)
                self._log(IncidentType.COERCED_NEW_IMAGE, sent, a, kid, image=True, sender=kid)
                lo_h, hi_h = sx.threat_delay_hours
                threat = sent + int(rng.integers(lo_h * HOUR_MS, hi_h * HOUR_MS + 1))
                self._dm(threat, a, kid)
                self._log(IncidentType.SEXTORTION_THREAT, threat, a, kid, image=False)
            if rng.random() < sx.block_prob:
                reason = ReportReason.SEXTORTION if rng.random() < sx.report_prob else None
                self._block(ta + int(rng.integers(2 * HOUR_MS, 36 * HOUR_MS)), kid, a, reason)

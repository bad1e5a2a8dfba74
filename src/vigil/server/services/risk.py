"""Behavioural risk on the server (DESIGN.md §3 "Behaviour"): the metadata event log -> features ->
the shipped risk model -> protective actions, with the reasons in words for every decision.

`run_risk_scoring` is one pass (tests and the simulator's server mode call it directly); `risk_loop`
runs it every `VIGIL_RISK_SCORING_INTERVAL_SECONDS` in the app lifespan, in the one process (of every
worker on every node) that holds the scoring lease (`risk_round`) (retention runs on its own, in
`vigil.server.services.retention`).

Scoring is incremental: the feature state (`RiskScoringState`) stays in the server context between
passes, and a pass reads only the events logged since the previous one. The window starts at a day's
start (the first day the features count), so it moves once a day: the first pass of a process, one asked
for an earlier time than the last, the first of a new day (events left the window, and what the state
derived from them must go), the first after an account's deletion and the first after an account's age
band changed (its history counts under the new band) read the whole window. So the state is always the
one a full pass over the window builds, holds nothing older than the window, and the decisions are the
same. The state is not saved: a restarted process, or one taking the lease over, starts with a pass
over the window (a saved copy would be derived metadata kept apart from the log, with its own retention
and deletion to honour, and writing it each pass would cost more than the pass). Actions only ever go up the
ladder:
  safety notice      signed notices to the minors the account reached
  restrict contact   account standing `restricted` (enforced on 1:1 and group sends: no contact with minors)
  open case          a case in the review console; the reasons, score and metadata timeline go into the
                     case's audit trail (shown on the case page)
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from vigil.protocol.reports import ReportReason
from vigil.protocol.wire import AgeBand
from vigil.safety.behavior.events import AccountFacts, UserId, event_to_record
from vigil.safety.behavior.features import FeatureExtractor
from vigil.safety.behavior.model import RiskModel, load_default_model
from vigil.safety.behavior.policy import Decision, ProtectiveAction
from vigil.safety.behavior.scoring import assess_and_decide
from vigil.safety.policy import Standing
from vigil.safety.routing import CaseSource, RoutingInput, route
from vigil.server.context import ServerContext
from vigil.server.db.accounts import (
    StandingRepository,
    UserRepository,
    UserRow,
)
from vigil.server.db.contacts import ContactRepository
from vigil.server.db.leases import JobLeaseRepository
from vigil.server.db.metadata import MetadataRepository, RiskStateRepository
from vigil.server.db.notices import NoticeRepository
from vigil.server.services import metadata, notices, risk_history
from vigil.server.services.audit import AuditEntry, append_audits
from vigil.server.services.case_evidence import EvidenceKind, store_case_evidence
from vigil.server.services.cases import open_or_join_case

__all__ = [
    "AppliedDecision",
    "RiskRun",
    "RiskScoringState",
    "risk_loop",
    "risk_round",
    "run_risk_scoring",
    "window_start_ms",
]

log = logging.getLogger(__name__)
DAY_MS = 24 * 3600 * 1000
WINDOW_DAYS = 28
CASE_PRIORITY = 80
TIMELINE_EVENTS = 50
_MODEL: RiskModel | None = None
# Events are read again this far behind the newest one read (and skipped by id when already seen): on
# PostgreSQL an event's row becomes visible at its transaction's commit, which can come after a later
# event's. A transaction that logs an event and commits more than this later is not scored.
REREAD_MS = 60_000
# The scoring lease (`risk_round`) lasts two intervals, so a holder that stopped is replaced within that.
RISK_JOB = "risk_scoring"
LEASE_MIN_MS = 60_000


@dataclass(slots=True)
class RiskScoringState:
    """What one pass leaves for the next: the feature state, how far the log was read, and when each
    account was last active (the accounts a pass scores)."""

    extractor: FeatureExtractor
    last_now_ms: int
    read_until_ms: int
    ties_until_ms: int  # connections made before this are registered as ties
    recent_ids: set[int]
    last_active_ms: dict[UserId, int]
    window_start_ms: int  # the window this state was built over (`window_start_ms`)
    # Each account's log pseudonym (an HMAC: computed once per process) and the facts registered for it.
    name_of: dict[int, UserId] = field(default_factory=dict)
    facts_of: dict[int, tuple[str, int, bool]] = field(default_factory=dict)
    # Each decided account's newest risk_history point (None: none), so a pass reads only the accounts
    # decided for the first time (`risk_history.record_assessments`).
    latest_history: dict[int, risk_history.RiskPoint | None] = field(default_factory=dict)

    def forgets_a_deletion(self, facts: Sequence[tuple[int, str, int, bool]]) -> bool:
        """Whether an account this state knows was deleted since: its events are gone from the log, and
        what this state derived from them must go too (only a pass from the window forgets it)."""
        known = self.facts_of
        return any(deleted and not known[user_id][2] for user_id, _, _, deleted in facts if user_id in known)

    def misses_a_band_change(self, facts: Sequence[tuple[int, str, int, bool]]) -> bool:
        """Whether a known account's age band changed since (a minor's birthday): its events were counted
        under the old band (to a minor or not), and only a pass from the window counts them again."""
        known = self.facts_of
        return any(band != known[user_id][0] for user_id, band, _, _ in facts if user_id in known)

    def register_accounts(
        self, facts: Sequence[tuple[int, str, int, bool]], pseudonym_of: Callable[[int], UserId]
    ) -> None:
        """Registers the accounts that are new or whose facts (age band, creation) changed since."""
        for user_id, band, created_at_ms, deleted in facts:
            if self.facts_of.get(user_id) == (band, created_at_ms, deleted):
                continue
            name = self.name_of.get(user_id)
            if name is None:
                name = self.name_of[user_id] = pseudonym_of(user_id)
            self.extractor.register_account(AccountFacts(name, AgeBand(band), created_at_ms))
            self.facts_of[user_id] = (band, created_at_ms, deleted)


@dataclass(frozen=True, slots=True)
class AppliedDecision:
    user: str
    level: ProtectiveAction
    score: float
    reasons: tuple[str, ...]
    notified: tuple[str, ...]
    case_id: int | None


@dataclass(frozen=True, slots=True)
class RiskRun:
    now_ms: int
    events: int
    scored: int
    decisions: list[Decision]  # every decision at or above the lowest threshold
    applied: list[AppliedDecision]  # those that moved an account up the ladder
    extractor: FeatureExtractor  # the feature state of this run (for inspection and tests)
    # Writing what was decided (actions, history, commit): wall seconds and this process's CPU seconds, so
    # `benchmarks/risk_scoring.py` can tell the decision writes from the scoring.
    writing_s: float = 0.0
    writing_cpu_s: float = 0.0


def window_start_ms(now_ms: int) -> int:
    """The start of the scoring window at `now_ms`: the start of the first of the WINDOW_DAYS days the
    features count (`FeatureExtractor`), so it moves only when the day does."""
    return (now_ms // DAY_MS - WINDOW_DAYS + 1) * DAY_MS


def _model() -> RiskModel:
    global _MODEL
    if _MODEL is None:
        _MODEL = load_default_model()
    return _MODEL


def _reasons_of(decision: Decision) -> tuple[str, ...]:
    return tuple(r.text for r in decision.assessment.reasons) or (
        "the combination of this account's recent activity scores above the threshold",
    )


async def _apply_all(
    ctx: ServerContext,
    session: AsyncSession,
    decisions: list[Decision],
    name_of: dict[int, UserId],
    now: int,
) -> list[AppliedDecision]:
    """Applies the decisions that move an account up the ladder. Most accounts a pass decides on are at
    their level already: one query tells which, and only the others are loaded and acted on. The writes
    are batched across accounts (the notices, the restrictions, the audit entries and the risk states
    each in one or two statements); only opening a case (with its timeline evidence) is per account."""
    decided = {d.user for d in decisions}
    id_of = {name: user_id for user_id, name in name_of.items() if name in decided}
    risk_states = RiskStateRepository(session)
    levels = await risk_states.levels_of(list(id_of.values()))
    rising = [
        d
        for d in decisions
        if d.user in id_of
        and d.level.severity
        > ProtectiveAction(levels.get(id_of[d.user], ("none", None))[0] or "none").severity
    ]
    if not rising:
        return []
    involved = {d.user for d in rising} | {m for d in rising for m in d.notify}
    id_of = {name: user_id for user_id, name in name_of.items() if name in involved}
    users: dict[str, UserRow] = {
        name_of[u.id]: u for u in await UserRepository(session).by_ids(list(id_of.values()))
    }
    rising = [d for d in rising if d.user in users]

    # Safety notices to the minors each account reached, unless already shown one about it.
    wanted = [
        (d.user, users[m])
        for d in rising
        if ProtectiveAction.SAFETY_NOTICE in d.actions
        for m in d.notify
        if m in users
    ]
    shown = await NoticeRepository(session).shown_safety_notices(
        {(minor.id, users[name].id) for name, minor in wanted}, "elevated_risk"
    )
    to_notify = [(name, minor) for name, minor in wanted if (minor.id, users[name].id) not in shown]
    await notices.issue_notices(
        ctx,
        session,
        pairs=[(minor, users[name]) for name, minor in to_notify],
        kind="elevated_risk",
        text=notices.ELEVATED_RISK_TEXT,
        now_ms=now,
    )
    notified: dict[str, list[str]] = {}
    for name, minor in to_notify:
        notified.setdefault(name, []).append(minor.username)

    # Contact with minors restricted, for the accounts not already in another standing.
    to_restrict = [users[d.user].id for d in rising if ProtectiveAction.RESTRICT_MINOR_CONTACT in d.actions]
    standings = StandingRepository(session)
    await standings.restrict_unless_standing(to_restrict, Standing.RESTRICTED.value, "auto_restrict", now)

    applied, entries, states = [], [], []
    id_of_name: dict[str, int] = {name: user_id for user_id, name in name_of.items()}  # the cases' timelines
    for decision in rising:
        subject = users[decision.user]
        reasons = _reasons_of(decision)
        sent = tuple(notified.get(decision.user, ()))
        details: dict[str, object] = {
            "level": decision.level.value,
            "score": round(decision.assessment.score, 4),
            "model": decision.assessment.model_version,
            "reasons": list(reasons),
            "notified": len(sent),
        }
        case_id = levels.get(subject.id, ("", None))[1]
        if ProtectiveAction.OPEN_CASE in decision.actions:
            routed = route(RoutingInput(CaseSource.RISK_MODEL, ReportReason.GROOMING))
            case = await open_or_join_case(
                session, subject, ReportReason.GROOMING, CASE_PRIORITY, False, now, queue=routed
            )
            case_id = case.id
            timeline = await metadata.timeline(
                ctx, session, subject.id, limit=TIMELINE_EVENTS, known=id_of_name
            )
            # The timeline is case evidence under the case's key; the audit entry only references it.
            evidence_id = await store_case_evidence(
                ctx.report_key,
                session,
                case_id=case.id,
                kind=EvidenceKind.RISK_TIMELINE,
                author="system:risk",
                content=json.dumps([event_to_record(e) for e in timeline]).encode(),
                now_ms=now,
            )
            entries.append(
                AuditEntry(
                    "system:risk",
                    "case.risk_opened",
                    f"case:{case.id}",
                    {**details, "timeline_evidence": evidence_id},
                )
            )
        entries.append(
            AuditEntry("system:risk", f"risk.{decision.level.value}", f"user:{subject.id}", details)
        )
        score = float(decision.assessment.score)
        states.append(
            {
                "user_id": subject.id,
                "level": decision.level.value,
                "score": score,
                "reasons": json.dumps(list(reasons)),
                "case_id": case_id,
                "updated_at_ms": now,
            }
        )
        # No username, score or reasons in the log: they are in the audit log and the case, behind the
        # console.
        log.info("risk: an account moved up to %s", decision.level.value)
        applied.append(AppliedDecision(subject.username, decision.level, score, reasons, sent, case_id))
    await append_audits(session, now, entries)
    await risk_states.put_many(states, existing=levels.keys())
    return applied


async def run_risk_scoring(
    ctx: ServerContext, *, now_ms: int | None = None, model: RiskModel | None = None
) -> RiskRun:
    """Scores every adult active in the last WINDOW_DAYS of the metadata log and applies the decisions
    that move an account up the ladder, in one transaction. Reads only the events logged since the
    previous pass of this process (see the module doc). Raises StorageError/ValidationError when the
    shipped model is broken."""
    now = ctx.clock_ms() if now_ms is None else now_ms
    model = model or _model()
    window_start = window_start_ms(now)
    state = ctx.risk_state if isinstance(ctx.risk_state, RiskScoringState) else None
    if state is not None and (now < state.last_now_ms or window_start != state.window_start_ms):
        state = None  # asked about an earlier time, or events left the window: start again from it
    # The state is the context's again only once the pass commits: a failed pass leaves none (what it
    # kept, the history it wrote, would not be what the database holds), and the next starts from the window.
    ctx.risk_state = None
    async with ctx.sessions() as session, session.begin():
        users = UserRepository(session)
        facts = await users.age_facts()
        if state is not None and (state.forgets_a_deletion(facts) or state.misses_a_band_change(facts)):
            state = None
        ties_since: int | None = None if state is None else state.ties_until_ms
        if state is None:
            state = RiskScoringState(
                FeatureExtractor(window_days=WINDOW_DAYS),
                now,
                window_start,
                window_start,
                set(),
                {},
                window_start,
            )
        state.register_accounts(facts, lambda user_id: metadata.pseudonym_of(ctx, user_id))
        name_of = state.name_of
        # Connections older than the window are history, not new contacts (the warm-up artefact: a
        # parent's first message to their child in the window counted as a new conversation with a minor).
        # A later pass adds those the window has left behind since (their events were observed already).
        for low, high, since in await ContactRepository(session).connections_before(
            window_start, since_ms=ties_since
        ):
            if low in name_of and high in name_of:
                state.extractor.register_tie(name_of[low], name_of[high], since)
        state.ties_until_ms = max(state.ties_until_ms, window_start)
        rows = await MetadataRepository(session).columns_between(
            max(window_start, state.read_until_ms - REREAD_MS), now + 1
        )
        # Rows by position (id, at_ms, ...: `columns_between`): a Row's attribute access costs ~100x.
        fresh = [row for row in rows if row[0] not in state.recent_ids]
        state.extractor.observe_all(metadata.events_of_column_rows(fresh))
        if rows:
            state.read_until_ms = max(state.read_until_ms, rows[-1][1])
        state.recent_ids = {row[0] for row in rows if row[1] >= state.read_until_ms - REREAD_MS}
        for user in state.extractor.drain_dirty():
            state.last_active_ms[user] = now
        state.last_active_ms = {u: t for u, t in state.last_active_ms.items() if t >= window_start}
        active = set(state.last_active_ms)
        decisions = assess_and_decide(state.extractor, model, model.thresholds, active, now)
        writing_from = (time.perf_counter(), time.process_time())
        applied = await _apply_all(ctx, session, decisions, name_of, now)
        decided = {d.user for d in decisions}
        await risk_history.record_assessments(
            session,
            decisions,
            {name: user_id for user_id, name in name_of.items() if name in decided},
            now,
            state.latest_history,
        )
    writing_s, writing_cpu_s = time.perf_counter() - writing_from[0], time.process_time() - writing_from[1]
    state.last_now_ms = now
    ctx.risk_state = state
    return RiskRun(
        now, len(fresh), len(active), decisions, applied, state.extractor, writing_s, writing_cpu_s
    )


async def risk_round(ctx: ServerContext, owner: str) -> RiskRun | None:
    """One round of `risk_loop`: takes (or renews) the scoring lease for `owner` and runs a pass; None
    when another process holds the lease. Every worker of every node runs the loop, and one scores: two
    scorers would each act on what the other acts on. A process that does not hold the lease drops its
    state, so when it takes the job over it starts from the window (what it kept is behind the log)."""
    now = ctx.clock_ms()
    lease_ms = max(2 * ctx.settings.risk_scoring_interval_seconds * 1000, LEASE_MIN_MS)
    async with ctx.sessions() as session, session.begin():
        held = await JobLeaseRepository(session).take(RISK_JOB, owner, now, now + lease_ms)
    if not held:
        ctx.risk_state = None
        return None
    return await run_risk_scoring(ctx, now_ms=now)


async def risk_loop(ctx: ServerContext) -> None:
    """Runs forever in the app lifespan; a failed round is logged and retried next interval."""
    interval = ctx.settings.risk_scoring_interval_seconds
    if interval <= 0:
        return
    owner = secrets.token_hex(16)
    while True:
        await asyncio.sleep(interval)
        try:
            run = await risk_round(ctx, owner)
            if run is not None and run.applied:
                log.info("risk scoring: %d accounts scored, %d actions", run.scored, len(run.applied))
        except Exception as error:  # never fatal for the server
            log.warning("risk scoring failed: %s", type(error).__name__)

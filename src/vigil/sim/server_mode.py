"""Server mode: the same generator driven through a real Vigil server over HTTP with real encryption.

The server runs in this process on a loopback port (the same `create_app` as `vigil serve`); its clock is
the simulation clock, so the metadata events it records carry simulated times. A sink turns each
generated event into real `Client` calls (register, contact requests and answers, Olm DMs, Megolm group
messages, blocks, account reports); the server records its own metadata events while serving them, and
the server's own risk service (`run_risk_scoring`, the same code as in production) runs at every
scoring interval. Its decisions feed back into the generator (a restricted account stops reaching
minors) and the server itself refuses what policy refuses. Output: the same layout as fast mode, with the
event log read back from the server's database, so `vigil sim score` works on both.

Groups joined by link (interest and hobby groups, the group-first groomer's and the mentor's group path)
go through the server's invite links: the group's creator issues a link the first time someone joins by
it, and the joiner joins with its token (`POST /v1/groups/join`), so the server logs `GroupJoined` itself.
The server applies its minors' group rule to each join: a minor is in a group only with adults they are
connected to. Where the generator puts a minor and an unknown adult in one group, the later of the two
joins is refused (`refused["group_joined:policy_violation"]`), and that account's messages to the group,
which the generator still writes, are not sent (`skipped`).

The reviewer is simulated as in fast mode, through the server's own review path: each case a minor's
grooming or sextortion report opened is decided `detection.minor_report_review_hours` after the report
with `cases.apply_action` (the console's call, citing a policy): restrict a harmful account with
probability `detection.review_accuracy`, otherwise dismiss; `reviews.jsonl` lists every review.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import uvicorn

from vigil.client.client import Client
from vigil.errors import StorageError, VigilError
from vigil.protocol.reports import ReportReason
from vigil.protocol.wire import AgeBand
from vigil.safety.behavior import events as ev
from vigil.safety.behavior.features import DAY_MS, HOUR_MS
from vigil.safety.policy import Standing
from vigil.server.app import create_app
from vigil.server.context import ServerContext
from vigil.server.db.accounts import UserRepository
from vigil.server.db.cases import QueueFilter
from vigil.server.services import cases, metadata, policies
from vigil.server.services.enforcement import standing_of
from vigil.server.services.risk import run_risk_scoring
from vigil.server.settings import Settings
from vigil.sim.generator import EventGenerator
from vigil.sim.population import build_population
from vigil.sim.run import _write_jsonl, write_truth
from vigil.sim.scenario import Scenario

__all__ = ["ServerRunResult", "connections_before_group_adds", "run_server_mode"]

# Simulated devices live in a temporary directory deleted after the run.
PASSPHRASE = "vigil simulator device store"  # noqa: S105
_REASONS = {
    ev.ReportReason.SEXUAL_CONTENT: ReportReason.CSAM,
    ev.ReportReason.GROOMING: ReportReason.GROOMING,
    ev.ReportReason.SEXTORTION: ReportReason.SEXTORTION,
    ev.ReportReason.HARASSMENT: ReportReason.HARASSMENT,
    ev.ReportReason.SPAM: ReportReason.SPAM,
    ev.ReportReason.OTHER: ReportReason.OTHER,
}


@dataclass
class ServerRunResult:
    accounts: int
    generated: int
    recorded: int
    refused: dict[str, int]
    actions: list[dict[str, object]]
    seconds: float
    # Generated events not sent because an earlier refusal made them impossible (a group message from an
    # account the server kept out of the group).
    skipped: dict[str, int] = field(default_factory=dict)


@dataclass
class _Restrictions:
    index_of: dict[str, int]
    restricted: set[int] = field(default_factory=set)

    def may_contact_minors(self, user: int) -> bool:
        return user not in self.restricted


_URGENT_REASONS = frozenset({ev.ReportReason.GROOMING, ev.ReportReason.SEXTORTION})
REVIEW_POLICY = ("CHILD_SAFETY", "Child safety: grooming, sextortion (simulated reviewer)")


class _Reviewer:
    """Works every case a minor's grooming or sextortion report opened, `bound_ms` after the report,
    through the server's own decision path (`cases.apply_action`, as the console does)."""

    def __init__(
        self,
        ctx: ServerContext,
        clock: list[int],
        bound_ms: int,
        minors: set[str],
        restricts: Callable[[str], bool],
    ) -> None:
        self.ctx, self.clock, self.bound_ms, self.minors, self.restricts = (
            ctx,
            clock,
            bound_ms,
            minors,
            restricts,
        )
        self.due: list[tuple[int, str]] = []  # (review time, reported account)
        self.reviewed: list[tuple[str, int, int, str]] = []  # (account, report time, review time, outcome)
        self.policy_id: int | None = None

    def note_report(self, event: ev.ReportFiled) -> None:
        """A report the server accepted; a minor's grooming or sextortion report is due for review."""
        if event.reason in _URGENT_REASONS and event.reporter in self.minors:
            self.due.append((event.at_ms + self.bound_ms, event.reported))

    async def review_due(self, now_ms: int) -> list[tuple[str, int]]:
        """Reviews every report due by `now_ms`, each at its due time; returns the accounts restricted
        (with the time)."""
        due = sorted(d for d in self.due if d[0] <= now_ms)
        if not due:
            return []
        self.due = [d for d in self.due if d[0] > now_ms]
        if self.policy_id is None:
            self.policy_id = (await policies.add_policy(self.ctx, "simulator", *REVIEW_POLICY)).id
        restricted: list[tuple[str, int]] = []
        for at, user in due:
            self.clock[0] = at
            reported_at = at - self.bound_ms
            async with self.ctx.sessions() as session:
                account = await UserRepository(session).by_username(user)
                acted = account is not None and await standing_of(session, account.id) is not Standing.ACTIVE
            open_cases = [c for c in await cases.queue(self.ctx, QueueFilter()) if c.subject == user]
            if acted or not open_cases:  # restricted already (the risk service, an earlier review)
                self.reviewed.append((user, reported_at, at, "already acted on"))
                continue
            action = cases.CaseAction.RESTRICT if self.restricts(user) else cases.CaseAction.DISMISS
            for case in open_cases:
                await cases.apply_action(
                    self.ctx, "simulator", None, case.id, action, policy_id=self.policy_id
                )
            if action is cases.CaseAction.RESTRICT:
                self.reviewed.append((user, reported_at, at, "restricted"))
                restricted.append((user, at))
            else:
                self.reviewed.append((user, reported_at, at, "no action"))
        return restricted


class _Collect:
    """The generator's sink: events are collected per simulated day, then replayed asynchronously."""

    def __init__(self) -> None:
        self.events: list[ev.MetadataEvent] = []

    def emit(self, event: ev.MetadataEvent) -> None:
        self.events.append(event)


def connections_before_group_adds(batch: list[ev.MetadataEvent]) -> list[ev.MetadataEvent]:
    """`batch` in time order, with every group add (or join by link) moved to just after the last
    acceptance that connects the member with anyone in that group (the adder included), when that
    acceptance comes later in the same batch.

    The generator dates a pre-existing group independently of the ties between its members, so a family
    or team group can be created (in simulated time) before the parent or coach is connected to the
    child. Fast mode does not mind; the real server keeps a minor out of any group holding an adult they
    are not connected to, which left children out of their family groups and made their parents look
    like strangers to them.
    """
    accepted: dict[frozenset[str], int] = {}
    joined: dict[str, dict[str, int]] = {}  # group -> member -> when they joined (as generated)
    for event in batch:
        if isinstance(event, ev.ContactRequestAnswered) and event.outcome is ev.RequestOutcome.ACCEPTED:
            pair = frozenset((event.requester, event.recipient))
            accepted[pair] = max(accepted.get(pair, event.at_ms), event.at_ms)
        elif isinstance(event, ev.GroupCreated):
            joined.setdefault(event.group, {}).setdefault(event.creator, event.at_ms)
        elif isinstance(event, ev.GroupMemberAdded):
            joined.setdefault(event.group, {}).setdefault(event.adder, event.at_ms)
            joined[event.group].setdefault(event.member, event.at_ms)
        elif isinstance(event, ev.GroupJoined):
            joined.setdefault(event.group, {}).setdefault(event.member, event.at_ms)
    moved: list[ev.MetadataEvent] = []
    for event in batch:
        if isinstance(event, ev.GroupMemberAdded | ev.GroupJoined):
            # Members joining later wait for their own connections; these are the ones already in.
            earlier = [u for u, at in joined[event.group].items() if u != event.member and at <= event.at_ms]
            pairs = (frozenset((event.member, other)) for other in earlier)
            later = [at for pair in pairs if (at := accepted.get(pair)) is not None and at >= event.at_ms]
            if later:
                event = dataclasses.replace(event, at_ms=max(later) + 1)
        moved.append(event)
    return sorted(moved, key=lambda e: e.at_ms)


def _birth_date(band: AgeBand, at: dt.date) -> dt.date:
    years = {AgeBand.TEEN_13_15: 15, AgeBand.TEEN_16_17: 17, AgeBand.ADULT: 35, AgeBand.UNDER_13: 15}[band]
    return at.replace(year=at.year - years, day=min(at.day, 28))


class _Driver:
    def __init__(self, ctx: ServerContext, url: str, store_dir: Path, clock: list[int]) -> None:
        self.ctx, self.url, self.store_dir, self.clock = ctx, url, store_dir, clock
        self.clients: dict[str, Client] = {}
        self.requests: dict[tuple[str, str], int] = {}
        self.groups: dict[str, str] = {}  # simulated group -> the server's group id
        self.creators: dict[str, str] = {}  # simulated group -> its creator, who issues its invite link
        self.links: dict[str, str] = {}  # simulated group -> its invite link's token
        self.members: dict[str, set[str]] = {}  # simulated group -> who the server let in
        self.refused: dict[str, int] = {}
        self.skipped: dict[str, int] = {}

    async def register(self, facts: ev.AccountFacts, start_ms: int) -> None:
        self.clock[0] = max(facts.created_at_ms, start_ms - 300 * DAY_MS)
        start_day = dt.datetime.fromtimestamp(start_ms / 1000, tz=dt.UTC).date()
        self.clients[facts.user] = await Client.register(
            self.url,
            facts.user,
            _birth_date(facts.age_band, start_day),
            self.store_dir / f"{facts.user}.db",
            PASSPHRASE,
        )

    async def play(self, event: ev.MetadataEvent) -> bool:
        """Plays `event`; False when the server refused it (counted in `refused`)."""
        self.clock[0] = event.at_ms
        try:
            await self._play(event)
        except VigilError as error:
            key = f"{event.kind.value}:{error.code}"
            self.refused[key] = self.refused.get(key, 0) + 1
            return False
        return True

    async def _play(self, event: ev.MetadataEvent) -> None:
        match event:
            case ev.ContactRequestSent():
                view = await self.clients[event.requester].request_contact(event.recipient)
                self.requests[(event.requester, event.recipient)] = view.id
            case ev.ContactRequestAnswered():
                request_id = self.requests.get((event.requester, event.recipient))
                if request_id is None or event.outcome is ev.RequestOutcome.IGNORED:
                    return  # unanswered: the request stays pending (the server expires it)
                recipient = self.clients[event.recipient]
                if event.outcome is ev.RequestOutcome.ACCEPTED:
                    await recipient.accept_request(request_id)
                else:
                    await recipient.ignore_request(request_id)
            case ev.MessageSent(recipient=str() as to):
                await self._send(self.clients[event.sender], to, event.content, group=False)
            case ev.MessageSent(group=str() as sim_group):
                group_id = self.groups.get(sim_group)
                if group_id is None:
                    return
                if event.sender not in self.members[sim_group]:
                    self.skipped["msg:not_in_group"] = self.skipped.get("msg:not_in_group", 0) + 1
                    return
                await self._send(self.clients[event.sender], group_id, event.content, group=True)
            case ev.MessageSent():
                return
            case ev.GroupCreated():
                info = await self.clients[event.creator].groups.create([])
                self.groups[event.group] = info.group_id
                self.creators[event.group] = event.creator
                self.members[event.group] = {event.creator}
            case ev.GroupMemberAdded():
                group_id = self.groups.get(event.group)
                if group_id is not None:
                    await self.clients[event.adder].groups.add_member(group_id, event.member)
                    self.members[event.group].add(event.member)
            case ev.GroupJoined():
                group_id = self.groups.get(event.group)
                if group_id is None:
                    return
                token = self.links.get(event.group)
                if token is None:
                    admin = self.clients[self.creators[event.group]]
                    token = self.links[event.group] = (await admin.groups.create_invite_link(group_id)).token
                await self.clients[event.member].groups.join(token)
                self.members[event.group].add(event.member)
            case ev.Block():
                await self.clients[event.blocker].block(event.blocked)
            case ev.ReportFiled():
                await self.clients[event.reporter].report_account(
                    event.reported, _REASONS[event.reason], block=False
                )

    async def _send(self, client: Client, to: str, kind: ev.MessageKind, *, group: bool) -> None:
        if kind is ev.MessageKind.TEXT:
            if group:
                await client.groups.send_text(to, "simulated message")
            else:
                await client.send_text(to, "simulated message")
            return
        data, mime = b"simulated attachment " + bytes(64), "application/octet-stream"
        if group:
            await client.groups.send_attachment(to, data, mime)
        else:
            await client.send_attachment(to, data, mime)

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()


async def _serve(settings: Settings) -> tuple[uvicorn.Server, asyncio.Task[None], str, ServerContext]:
    from vigil.server.embedded import free_port

    port = free_port()
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise StorageError("the simulator's server stopped during start-up")
        await asyncio.sleep(0.02)
    ctx: ServerContext = app.state.context
    return server, task, f"http://127.0.0.1:{port}", ctx


async def run_server_mode(
    sc: Scenario,
    out_dir: Path,
    *,
    seed: int | None = None,
    database_url: str | None = None,
    on_day: Callable[[int], None] | None = None,
) -> ServerRunResult:
    """Simulate `sc` through a real server and write `out_dir` (layout of `vigil.sim.run`); `on_day(day)`
    after each simulated day has been played (progress). Raises StorageError when the output cannot be
    written or the server does not start."""
    if seed is not None:
        sc = sc.model_copy(update={"seed": seed})
    t0 = time.perf_counter()
    rng = np.random.default_rng(sc.seed)
    pop = build_population(sc, rng)
    enforcement = _Restrictions({u: i for i, u in enumerate(pop.ids)})
    sink = _Collect()
    gen = EventGenerator(sc, pop, rng, sink, enforcement, apply_group_rule=False)  # the server decides
    clock = [sc.start_ms]
    actions: list[dict[str, object]] = []
    generated = 0
    with tempfile.TemporaryDirectory(prefix="vigil-sim-") as tmp:
        settings = Settings(
            data_dir=Path(tmp) / "server",
            database_url=database_url,
            risk_scoring_interval_seconds=0,  # the simulation runs the scoring on simulated time
            contact_requests_per_day_new=1000,
            rate_limits_enabled=False,  # one process drives a whole population from one address
        )
        server, task, url, ctx = await _serve(settings)
        ctx.clock_ms = lambda: clock[0]
        driver = _Driver(ctx, url, Path(tmp), clock)
        review_rng = np.random.default_rng([sc.seed, 7])  # fast mode's reviewer draws the same way

        def reviewer_restricts(user: str) -> bool:
            harmful = pop.roles[enforcement.index_of[user]].harmful_to_minors
            return harmful and bool(review_rng.random() < sc.detection.review_accuracy)

        reviewer = _Reviewer(
            ctx,
            clock,
            int(sc.detection.minor_report_review_hours * HOUR_MS),
            {f.user for f in gen.account_facts() if f.age_band.is_minor},
            reviewer_restricts,
        )
        try:
            for facts in sorted(gen.account_facts(), key=lambda f: f.created_at_ms):
                await driver.register(facts, sc.start_ms)
            interval = sc.scoring.interval_hours * HOUR_MS
            next_check = sc.start_ms + interval

            async def review(now: int) -> None:
                for user, at in await reviewer.review_due(now):
                    actions.append(
                        {
                            "u": user,
                            "level": "open_case",
                            "t": at,
                            "score": 1.0,
                            "reasons": ["a minor's report, reviewed"],
                            "notified": 0,
                            "source": "review",
                        }
                    )
                    enforcement.restricted.add(enforcement.index_of[user])

            async def checkpoint(now: int) -> None:
                await review(now)
                clock[0] = now
                run = await run_risk_scoring(ctx, now_ms=now)
                for a in run.applied:
                    actions.append(
                        {
                            "u": a.user,
                            "level": a.level.value,
                            "t": now,
                            "score": round(a.score, 4),
                            "reasons": list(a.reasons),
                            "notified": len(a.notified),
                            "source": "risk",
                        }
                    )
                    if a.level.severity >= 2:
                        enforcement.restricted.add(enforcement.index_of[a.user])

            async def replay() -> None:
                nonlocal next_check, generated
                batch, sink.events = connections_before_group_adds(sink.events), []
                generated += len(batch)
                for event in batch:
                    while event.at_ms >= next_check:
                        await checkpoint(next_check)
                        next_check += interval
                    await review(event.at_ms)  # the review bound holds between checkpoints too
                    if await driver.play(event) and isinstance(event, ev.ReportFiled):
                        reviewer.note_report(event)

            gen.emit_history()
            await replay()
            for day in range(sc.days):
                gen.run_day(day)
                await replay()
                if on_day is not None:
                    on_day(day)
            end = sc.start_ms + sc.days * DAY_MS
            while next_check <= end:
                await checkpoint(next_check)
                next_check += interval
            await review(end)
            async with ctx.sessions() as session:
                names = await metadata.pseudonyms_to_usernames(ctx, session)
                recorded = await metadata.load_events(session, 0, 2**62, names=names)
        finally:
            await driver.close()
            server.should_exit = True
            await task
    _write_output(
        sc,
        out_dir,
        gen,
        pop,
        recorded,
        actions,
        reviewer.reviewed,
        generated,
        driver,
        time.perf_counter() - t0,
    )
    return ServerRunResult(
        len(pop.ids),
        generated,
        len(recorded),
        driver.refused,
        actions,
        time.perf_counter() - t0,
        driver.skipped,
    )


def _write_output(
    sc: Scenario,
    out_dir: Path,
    gen: EventGenerator,
    pop: object,
    recorded: list[ev.MetadataEvent],
    actions: list[dict[str, object]],
    reviews: list[tuple[str, int, int, str]],
    generated: int,
    driver: _Driver,
    seconds: float,
) -> None:
    from vigil.sim.population import Population, Role

    assert isinstance(pop, Population)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "scenario.json").write_text(sc.model_dump_json(indent=1) + "\n", encoding="utf-8")
        _write_jsonl(out_dir / "events.jsonl", [ev.event_to_record(e) for e in recorded])
        _write_jsonl(out_dir / "accounts.jsonl", [ev.facts_to_record(f) for f in gen.account_facts()])
        write_truth(out_dir, gen, pop, [e for e in recorded if isinstance(e, ev.ReportFiled)])
        _write_jsonl(out_dir / "actions.jsonl", actions)
        _write_jsonl(
            out_dir / "reviews.jsonl",
            [{"u": u, "reported": r, "reviewed": t, "outcome": o} for u, r, t, o in reviews],
        )
        summary = {
            "scenario": sc.name,
            "seed": sc.seed,
            "mode": "server",
            "accounts": len(pop.ids),
            "roles": {r.value: pop.roles.count(r) for r in Role},
            "events": len(recorded),
            "generated": generated,
            "refused": driver.refused,
            "skipped": driver.skipped,
            "incidents": len(gen.incidents),
            "actions": len(actions),
            "reviews": len(reviews),
            "start_ms": sc.start_ms,
            "end_ms": sc.start_ms + sc.days * DAY_MS,
            "seconds": round(seconds, 2),
        }
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        raise StorageError(f"cannot write simulation output to {out_dir}: {exc}") from exc

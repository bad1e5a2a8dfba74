"""Server-side behavioural risk scoring against a real database: `run_risk_scoring` (load the metadata
log from the database, build features, score every active adult, apply the decisions in one
transaction) timed per 10k metadata events, as a full pass (a fresh process: the whole window) and as
the incremental passes the server runs afterwards (only the events logged since the previous pass).

Baselines in the same run: the pure pipeline over the very same events in memory (`FeatureExtractor.
observe_all`, then the same `assess_and_decide` over the same accounts), so the ratios show what the
database round trip and the decision writes cost on top. The last `--new-hours` of the generated log
arrive after the full pass, in `--repeat` slices, one incremental pass each. Prints one JSON line: wall
ratios and CPU ratios (`process_time` of this process: on SQLite that includes the database's work, which
runs in a thread here; on PostgreSQL it leaves out the database server's own work).

Fairness of the incremental comparison: both sides score the same accounts (those the server pass
scored) from the same events (the baseline's are cut to whole seconds and lose the size bucket, as the
server logs them), and `incremental_same_decisions_as_pure` checks they decide the same. The baseline
takes no action; the server pass also writes what it decided (`incremental_applied_decisions` accounts
moved up: notices, restrictions, cases, audit entries, risk states; and risk_history rows), so the
ratios are given with those writes (`ratio_incremental_server_to_pure`, `cpu_ratio_...`) and without
them (`..._scoring_to_pure`: the pass's time less `RiskRun.writing_s`). `--profile FILE` writes a cProfile
of the incremental passes.

    .venv/bin/python benchmarks/risk_scoring.py [--minors N --adults N --days N]
    .venv/bin/python benchmarks/risk_scoring.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/DB

The database must be empty (a fresh SQLite file in a temporary directory by default); the schema is
migrated here and the events and accounts are bulk-inserted before timing.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import datetime as dt
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import insert, select

from vigil.protocol.wire import AgeBand
from vigil.safety.behavior.events import AccountFacts, MessageSent, MetadataEvent, UserId
from vigil.safety.behavior.features import FeatureExtractor
from vigil.safety.behavior.policy import Decision
from vigil.safety.behavior.scoring import assess_and_decide
from vigil.server.context import ServerContext
from vigil.server.db.accounts import UserRow
from vigil.server.db.metadata import MetadataEventRow
from vigil.server.services import metadata
from vigil.server.services.risk import WINDOW_DAYS, _model, run_risk_scoring
from vigil.server.settings import Settings
from vigil.sim.generator import EventGenerator
from vigil.sim.population import build_population
from vigil.sim.scenario import default_scenario

BATCH = 5000


class _Collect:
    def __init__(self) -> None:
        self.events: list[MetadataEvent] = []

    def emit(self, event: MetadataEvent) -> None:
        self.events.append(event)


def _as_logged(event: MetadataEvent) -> MetadataEvent:
    """The event as the server reads it back (whole seconds, no message size), so both sides score the
    same input and can be checked to decide the same."""
    event = dataclasses.replace(event, at_ms=event.at_ms - event.at_ms % metadata.LOG_RESOLUTION_MS)
    if isinstance(event, MessageSent):
        event = dataclasses.replace(event, size_bucket=metadata.UNKNOWN_SIZE_BUCKET)
    return event


def _decided(decisions: list[Decision]) -> list[tuple[str, str, float]]:
    return sorted((d.user, d.level.value, round(d.assessment.score, 9)) for d in decisions)


def _row(event: MetadataEvent) -> dict[str, object]:
    row = metadata.row_of_event(event)
    return {c: getattr(row, c) for c in ("at_ms", "kind", "actor", "target", "group_id", "content", "reason")}


async def _fill(ctx: ServerContext, facts: list[object], events: list[MetadataEvent]) -> dict[str, UserId]:
    """Inserts the accounts and the events (named by pseudonym, as the server logs them); returns
    username -> pseudonym."""
    users = []
    for f in facts:
        assert isinstance(f, AccountFacts)
        changes_on = None if f.age_band is AgeBand.ADULT else "2099-01-01"
        users.append(
            {
                "username": f.user,
                "age_band": f.age_band.value,
                "band_changes_on": changes_on,
                "created_at_ms": f.created_at_ms,
            }
        )
    async with ctx.sessions() as session, session.begin():
        await session.execute(insert(UserRow), users)
        # the log names accounts by pseudonym, as `metadata.record_many` writes them
        ids = (await session.execute(select(UserRow.username, UserRow.id))).all()
        alias = {name: metadata.pseudonym_of(ctx, user_id) for name, user_id in ids}
        rows = [_row(e) for e in events]
        for row in rows:
            row["actor"] = alias[str(row["actor"])]
            row["target"] = None if row["target"] is None else alias[str(row["target"])]
        for i in range(0, len(rows), BATCH):
            await session.execute(insert(MetadataEventRow), rows[i : i + BATCH])
    return alias


async def _bench(args: argparse.Namespace, tmp: Path) -> dict[str, object]:
    sc = default_scenario().with_overrides(
        days=args.days, history_days=args.days, population={"minors": args.minors, "adults": args.adults}
    )
    rng = np.random.default_rng(42)
    pop = build_population(sc, rng)
    sink = _Collect()
    gen = EventGenerator(sc, pop, rng, sink)
    facts = gen.account_facts()
    gen.emit_history()
    for day in range(sc.days):
        gen.run_day(day)
    events = sorted(sink.events, key=lambda e: e.at_ms)
    # The incremental passes stay within the last day: at midnight the window moves and a pass reads it whole.
    now = sc.start_ms + sc.days * 86_400_000 - 1
    assert events[0].at_ms >= now - WINDOW_DAYS * 86_400_000, "every event inside the scoring window"
    history_end = now - args.new_hours * 3_600_000
    slice_ms = args.new_hours * 3_600_000 // args.repeat
    slice_ends = [history_end + slice_ms * (i + 1) for i in range(args.repeat)]
    slices = [[e for e in events if end - slice_ms <= e.at_ms < end] for end in slice_ends]
    events = [e for e in events if e.at_ms < history_end]

    settings = Settings(data_dir=tmp / "server", database_url=args.database_url)
    async with ServerContext.open(settings) as ctx:
        t = time.perf_counter()
        alias = await _fill(ctx, list(facts), events)
        fill_s = time.perf_counter() - t
        # The baselines see what the server sees: accounts by their log pseudonyms.
        facts = [AccountFacts(alias[f.user], f.age_band, f.created_at_ms) for f in facts]
        events = [_as_logged(metadata.renamed(e, alias)) for e in events]
        pure_slices = [[_as_logged(metadata.renamed(e, alias)) for e in new] for new in slices]
        model = _model()

        # Baseline: the same events, in memory, through the same extractor and decision code.
        pure_features, pure_total, pure_cpu = [], [], []
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            ex = FeatureExtractor(window_days=WINDOW_DAYS)
            for f in facts:
                ex.register_account(f)
            ex.observe_all(events)
            t1 = time.perf_counter()
            decisions = assess_and_decide(ex, model, model.thresholds, ex.drain_dirty(), history_end)
            pure_features.append(t1 - t0)
            pure_total.append(time.perf_counter() - t0)
            pure_cpu.append(time.process_time() - c0)

        t = time.perf_counter()
        async with ctx.sessions() as session:
            loaded = await metadata.load_events(session, history_end - WINDOW_DAYS * 86_400_000, history_end)
        load_s = time.perf_counter() - t
        assert len(loaded) == len(events)

        # The first server run applies every decision (notices, restrictions, cases: writes); later full
        # runs (the state dropped, as in a fresh process) find the accounts at their level and only read
        # and score.
        t = time.perf_counter()
        first = await run_risk_scoring(ctx, now_ms=history_end, model=model)
        first_s = time.perf_counter() - t
        again, again_cpu = [], []
        for _ in range(args.repeat):
            ctx.risk_state = None
            t, c = time.perf_counter(), time.process_time()
            run = await run_risk_scoring(ctx, now_ms=history_end, model=model)
            again.append(time.perf_counter() - t)
            again_cpu.append(time.process_time() - c)
            assert run.applied == [] and run.events == len(events)

        # Incremental: each slice is logged, then one pass reads it. The baseline continues an in-memory
        # extractor that saw the same history, over the same slice, scoring the same accounts.
        pure_extractor = FeatureExtractor(window_days=WINDOW_DAYS)
        for f in facts:
            pure_extractor.register_account(f)
        pure_extractor.observe_all(events)
        pure_extractor.drain_dirty()
        incremental, pure_incremental, new_events = [], [], 0
        incremental_cpu, pure_incremental_cpu = [], []
        writing, writing_cpu, applied, same_decisions = [], [], 0, True
        profile = cProfile.Profile() if args.profile else None
        for end, new, pure_new in zip(slice_ends, slices, pure_slices, strict=True):
            async with ctx.sessions() as session, session.begin():
                await metadata.record_many(ctx, session, new)
            t, c = time.perf_counter(), time.process_time()
            if profile is not None:
                profile.enable()
            run = await run_risk_scoring(ctx, now_ms=end, model=model)
            if profile is not None:
                profile.disable()
            incremental.append(time.perf_counter() - t)
            incremental_cpu.append(time.process_time() - c)
            assert run.events == len(new)
            new_events += len(new)
            writing.append(getattr(run, "writing_s", 0.0))  # 0 on code before the field: no split
            writing_cpu.append(getattr(run, "writing_cpu_s", 0.0))
            applied += len(run.applied)
            scored = set(getattr(ctx.risk_state, "last_active_ms", {}))
            t, c = time.perf_counter(), time.process_time()
            pure_extractor.observe_all(pure_new)
            pure_extractor.drain_dirty()
            pure_decisions = assess_and_decide(pure_extractor, model, model.thresholds, scored, end)
            pure_incremental.append(time.perf_counter() - t)
            pure_incremental_cpu.append(time.process_time() - c)
            same_decisions = same_decisions and _decided(pure_decisions) == _decided(run.decisions)

    if profile is not None:
        profile.dump_stats(args.profile)
    n = len(events)
    per10k = 10_000 / n
    server_s = statistics.median(again)
    pure_s = statistics.median(pure_total)
    features_s = statistics.median(pure_features)
    return {
        "benchmark": "risk_scoring",
        "database": settings.resolved_database_url.split(":", 1)[0],
        "accounts": len(facts),
        "events": n,
        "scored_accounts": first.scored,
        "decisions": len(decisions),
        "applied_first_run": len(first.applied),
        "server_run_s": round(server_s, 3),
        "server_ms_per_10k_events": round(server_s * per10k * 1000, 1),
        "server_first_run_ms_per_10k_events": round(first_s * per10k * 1000, 1),
        "server_load_events_ms_per_10k_events": round(load_s * per10k * 1000, 1),
        "baseline_pure_features_ms_per_10k_events": round(features_s * per10k * 1000, 1),
        "baseline_pure_features_events_per_s": round(n / features_s),
        "baseline_pure_pipeline_ms_per_10k_events": round(pure_s * per10k * 1000, 1),
        "ratio_server_to_pure_features": round(server_s / features_s, 2),
        "ratio_server_to_pure_pipeline": round(server_s / pure_s, 2),
        "cpu_ratio_server_to_pure_pipeline": round(
            statistics.median(again_cpu) / statistics.median(pure_cpu), 2
        ),
        "incremental_passes": args.repeat,
        "incremental_new_events_per_pass": round(new_events / args.repeat),
        "incremental_server_ms_per_pass": round(statistics.median(incremental) * 1000, 1),
        "incremental_baseline_pure_ms_per_pass": round(statistics.median(pure_incremental) * 1000, 1),
        "ratio_incremental_server_to_pure": round(sum(incremental) / sum(pure_incremental), 2),
        "incremental_server_cpu_ms_per_pass": round(statistics.median(incremental_cpu) * 1000, 1),
        "incremental_baseline_pure_cpu_ms_per_pass": round(statistics.median(pure_incremental_cpu) * 1000, 1),
        "cpu_ratio_incremental_server_to_pure": round(sum(incremental_cpu) / sum(pure_incremental_cpu), 2),
        # The pure continuation decides but takes no action; the server also writes what moves accounts
        # up (notices, restrictions, cases, audit, risk state) and the risk history. Without those writes:
        "incremental_applied_decisions": applied,
        "incremental_same_decisions_as_pure": same_decisions,
        "incremental_server_writing_cpu_ms_per_pass": round(statistics.median(writing_cpu) * 1000, 1),
        "ratio_incremental_scoring_to_pure": round(
            (sum(incremental) - sum(writing)) / sum(pure_incremental), 2
        ),
        "cpu_ratio_incremental_scoring_to_pure": round(
            (sum(incremental_cpu) - sum(writing_cpu)) / sum(pure_incremental_cpu), 2
        ),
        "fill_database_s": round(fill_s, 1),
        "repeat": args.repeat,
        "python": platform.python_version(),
        "date": dt.date.today().isoformat(),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minors", type=int, default=800)
    ap.add_argument("--adults", type=int, default=1000)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--new-hours", type=int, default=6, help="hours of the log that arrive after the full pass"
    )
    ap.add_argument("--profile", default=None, help="write a cProfile of the incremental passes to this file")
    ap.add_argument("--database-url", default=None, help="an empty database (default: SQLite in a temp dir)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp:
        print(json.dumps(asyncio.run(_bench(args, Path(tmp)))))


if __name__ == "__main__":
    main()

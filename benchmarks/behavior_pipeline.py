"""Behavioural risk pipeline: feature throughput (events/s, one core) and per-account scoring latency.

Baselines in the same run: iterating the same events doing nothing (the floor any consumer pays), and
features-only latency (so the model's own cost is visible). Prints one JSON line.

    .venv/bin/python benchmarks/behavior_pipeline.py [--minors N --adults N --days N]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

from vigil.safety.behavior.events import MetadataEvent
from vigil.safety.behavior.features import FeatureExtractor
from vigil.safety.behavior.model import load_default_model
from vigil.sim.generator import EventGenerator
from vigil.sim.population import Role, build_population
from vigil.sim.scenario import default_scenario


class _Collect:
    def __init__(self) -> None:
        self.events: list[MetadataEvent] = []

    def emit(self, event: MetadataEvent) -> None:
        self.events.append(event)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minors", type=int, default=4000)
    ap.add_argument("--adults", type=int, default=5000)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--accounts", type=int, default=2000, help="accounts timed for scoring latency")
    args = ap.parse_args()
    sc = default_scenario().with_overrides(
        days=args.days, population={"minors": args.minors, "adults": args.adults}
    )
    rng = np.random.default_rng(42)
    pop = build_population(sc, rng)
    sink = _Collect()
    gen = EventGenerator(sc, pop, rng, sink)
    facts = gen.account_facts()
    t = time.perf_counter()
    gen.emit_history()
    for day in range(sc.days):
        gen.run_day(day)
    gen_s = time.perf_counter() - t
    events = sink.events

    t = time.perf_counter()
    n = 0
    for _ in events:
        n += 1
    baseline_s = time.perf_counter() - t

    ex = FeatureExtractor(window_days=sc.scoring.window_days)
    for f in facts:
        ex.register_account(f)
    t = time.perf_counter()
    ex.observe_all(events)
    features_s = time.perf_counter() - t

    model = load_default_model()
    now = sc.start_ms + sc.days * 86_400_000
    adults = [pop.ids[i] for i, r in enumerate(pop.roles) if r is not Role.MINOR][: args.accounts]
    feat_ns, full_ns = [], []
    for user in adults:
        t0 = time.perf_counter_ns()
        fv = ex.features(user, now)
        t1 = time.perf_counter_ns()
        model.assess(fv)
        t2 = time.perf_counter_ns()
        feat_ns.append(t1 - t0)
        full_ns.append(t2 - t0)
    t = time.perf_counter()
    x = ex.feature_matrix(adults, now)
    model.score_matrix(x)
    batch_s = time.perf_counter() - t

    def pct(v: list[int], q: float) -> float:
        return round(float(np.percentile(v, q)) / 1000, 1)

    print(
        json.dumps(
            {
                "benchmark": "behavior_pipeline",
                "accounts": len(pop.ids),
                "events": len(events),
                "generate_events_per_s": round(len(events) / gen_s),
                "baseline_iterate_events_per_s": round(len(events) / baseline_s),
                "features_events_per_s": round(len(events) / features_s),
                "score_us_p50": pct(full_ns, 50),
                "score_us_p99": pct(full_ns, 99),
                "features_only_us_p50": pct(feat_ns, 50),
                "features_only_us_p99": pct(feat_ns, 99),
                "batch_score_us_per_account": round(batch_s / len(adults) * 1e6, 1),
                "scored_accounts": len(adults),
                "python": platform.python_version(),
            }
        )
    )


if __name__ == "__main__":
    main()

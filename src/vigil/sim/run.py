"""Run a scenario end to end in fast mode: generate events, extract features, score, act, write the output.

Output directory layout (read back by `vigil.sim.score`):
  scenario.json       the validated scenario, seed included
  accounts.jsonl      account facts (what the server knows)
  ground_truth.jsonl  role, modified-client flag and harm start per account (what only the simulator knows)
  events.jsonl        the metadata event log (if `write_events`), one compact record a line
  actions.jsonl       every escalation Vigil decided: user, level, time, score, reasons, minors notified
  summary.json        counts and timings
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from vigil.errors import StorageError
from vigil.safety.behavior.events import MetadataEvent, UserId, event_to_record, facts_to_record
from vigil.safety.behavior.features import DAY_MS, HOUR_MS, FeatureExtractor
from vigil.safety.behavior.model import RiskModel, load_default_model
from vigil.safety.behavior.policy import ProtectiveAction, Thresholds
from vigil.safety.behavior.scoring import assess_and_decide
from vigil.sim.generator import EventGenerator
from vigil.sim.population import Population, Role, build_population
from vigil.sim.scenario import Scenario

__all__ = ["ActionRecord", "SimulationResult", "run_scenario", "simulate"]


@dataclass(frozen=True, slots=True)
class ActionRecord:
    user: UserId
    level: ProtectiveAction
    at_ms: int
    score: float
    reasons: tuple[str, ...]
    notified: int


@dataclass
class SimulationResult:
    scenario: Scenario
    population: Population
    generator: EventGenerator
    extractor: FeatureExtractor
    actions: list[ActionRecord]
    events: int
    seconds: float


class _Pipeline:
    """The sink behind the generator: feature state, periodic scoring, the enforcement it feeds back."""

    def __init__(
        self,
        extractor: FeatureExtractor,
        model: RiskModel | None,
        thresholds: Thresholds | None,
        interval_ms: int,
        first_check_ms: int,
        events_out: IO[str] | None,
        on_checkpoint: Callable[[int], None] | None,
    ) -> None:
        self.extractor = extractor
        self.model = model
        self.thresholds = thresholds or (model.thresholds if model else None)
        self.interval = interval_ms
        self.next_check = first_check_ms
        self.out = events_out
        self.on_checkpoint = on_checkpoint
        self.level: dict[UserId, ProtectiveAction] = {}
        self.restricted: set[int] = set()
        self.actions: list[ActionRecord] = []
        self.index_of: dict[UserId, int] = {}
        self.events = 0

    def emit(self, event: MetadataEvent) -> None:
        while event.at_ms >= self.next_check:
            self.checkpoint(self.next_check)
            self.next_check += self.interval
        self.extractor.observe(event)
        self.events += 1
        if self.out is not None:
            self.out.write(json.dumps(event_to_record(event), separators=(",", ":")) + "\n")

    def may_contact_minors(self, user: int) -> bool:
        return user not in self.restricted

    def checkpoint(self, now_ms: int) -> None:
        if self.on_checkpoint is not None:
            self.on_checkpoint(now_ms)
        if self.model is None or self.thresholds is None:
            return
        ex = self.extractor
        # The same pass the server's risk service runs (vigil.safety.behavior.scoring).
        for decision in assess_and_decide(ex, self.model, self.thresholds, ex.drain_dirty(), now_ms):
            user, assessment = decision.user, decision.assessment
            previous = self.level.get(user, ProtectiveAction.NONE)
            if decision.level.severity <= previous.severity:
                continue
            self.level[user] = decision.level
            if decision.level.severity >= ProtectiveAction.RESTRICT_MINOR_CONTACT.severity:
                self.restricted.add(self.index_of[user])
            self.actions.append(
                ActionRecord(
                    user,
                    decision.level,
                    now_ms,
                    round(assessment.score, 4),
                    tuple(r.text for r in assessment.reasons),
                    len(decision.notify),
                )
            )


def simulate(
    sc: Scenario,
    *,
    rng: np.random.Generator,
    model: RiskModel | None,
    thresholds: Thresholds | None = None,
    events_out: IO[str] | None = None,
    on_checkpoint: Callable[[int], None] | None = None,
    on_start: Callable[[Population, FeatureExtractor], None] | None = None,
) -> SimulationResult:
    """Generate the scenario and run the behaviour pipeline over it; `model=None` only extracts features.

    `on_start(population, extractor)` is called once both exist; `on_checkpoint(now_ms)` at every scoring
    interval (training snapshots features there).
    """
    t0 = time.perf_counter()
    pop = build_population(sc, rng)
    extractor = FeatureExtractor(window_days=sc.scoring.window_days)
    if on_start is not None:
        on_start(pop, extractor)
    interval = sc.scoring.interval_hours * HOUR_MS
    pipeline = _Pipeline(
        extractor, model, thresholds, interval, sc.start_ms + interval, events_out, on_checkpoint
    )
    pipeline.index_of = {u: i for i, u in enumerate(pop.ids)}
    gen = EventGenerator(sc, pop, rng, pipeline, pipeline)
    for facts in gen.account_facts():
        extractor.register_account(facts)
    gen.emit_history()
    extractor.drain_dirty()  # history is not news: score accounts for what they do from day 0
    for day in range(sc.days):
        gen.run_day(day)
    end = sc.start_ms + sc.days * DAY_MS
    while pipeline.next_check <= end:
        pipeline.checkpoint(pipeline.next_check)
        pipeline.next_check += interval
    return SimulationResult(
        sc, pop, gen, extractor, pipeline.actions, pipeline.events, time.perf_counter() - t0
    )


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, separators=(",", ":")) + "\n")


def run_scenario(
    sc: Scenario,
    out_dir: Path,
    *,
    seed: int | None = None,
    model: RiskModel | None = None,
) -> SimulationResult:
    """CLI `vigil sim run`: simulate `sc` (with `seed` or the scenario's own) and write `out_dir`.

    Uses the shipped model unless one is given. Raises StorageError if the directory cannot be written,
    ValidationError/StorageError if the shipped model is broken.
    """
    if seed is not None:
        sc = sc.model_copy(update={"seed": seed})
    model = model or load_default_model()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "scenario.json").write_text(sc.model_dump_json(indent=1) + "\n", encoding="utf-8")
        events_file = (out_dir / "events.jsonl").open("w", encoding="utf-8") if sc.write_events else None
        try:
            result = simulate(sc, rng=np.random.default_rng(sc.seed), model=model, events_out=events_file)
        finally:
            if events_file is not None:
                events_file.close()
        gen, pop = result.generator, result.population
        _write_jsonl(out_dir / "accounts.jsonl", [facts_to_record(f) for f in gen.account_facts()])
        _write_jsonl(
            out_dir / "ground_truth.jsonl",
            [
                {
                    "u": pop.ids[i],
                    "role": role.value,
                    "modified_client": i in pop.modified_client,
                    "harm_start_ms": gen.harm_start.get(i),
                }
                for i, role in enumerate(pop.roles)
            ],
        )
        _write_jsonl(
            out_dir / "actions.jsonl",
            [
                {
                    "u": a.user,
                    "level": a.level.value,
                    "t": a.at_ms,
                    "score": a.score,
                    "reasons": list(a.reasons),
                    "notified": a.notified,
                }
                for a in result.actions
            ],
        )
        summary = {
            "scenario": sc.name,
            "seed": sc.seed,
            "model": model.version,
            "accounts": len(pop.ids),
            "roles": {r.value: pop.roles.count(r) for r in Role},
            "events": result.events,
            "actions": len(result.actions),
            "start_ms": sc.start_ms,
            "end_ms": sc.start_ms + sc.days * DAY_MS,
            "seconds": round(result.seconds, 2),
        }
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        raise StorageError(f"cannot write simulation output to {out_dir}: {exc}") from exc
    return result

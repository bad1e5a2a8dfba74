"""Run a scenario end to end in fast mode: generate events, extract features, score, act, write the output.

Output directory layout (read back by `vigil.sim.score`):
  scenario.json       the validated scenario, seed included
  accounts.jsonl      account facts (what the server knows)
  ground_truth.jsonl  role, modified-client flag, harm start, groomer style, replacement link per account
                      (what only the simulator knows)
  incidents.jsonl     the incident log (`vigil.sim.incidents`): every harmful act, prevented ones marked
  events.jsonl        the metadata event log (if `write_events`), one compact record a line
  reviews.jsonl       every review of a minor's grooming or sextortion report: account, report time, review
                      time, outcome (`restricted`, `no action`, `already acted on`)
  actions.jsonl       every escalation Vigil decided: user, level, time, score, reasons, minors notified,
                      source (`risk`: the model; `review`: a reviewer acting on a minor's report)
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
from vigil.safety.behavior.events import (
    MetadataEvent,
    ReportFiled,
    ReportReason,
    UserId,
    event_to_record,
    facts_to_record,
)
from vigil.safety.behavior.features import DAY_MS, FEATURE_NAMES, HOUR_MS, FeatureExtractor
from vigil.safety.behavior.model import RiskModel, load_default_model
from vigil.safety.behavior.policy import ProtectiveAction, Thresholds
from vigil.safety.behavior.scoring import assess_and_decide
from vigil.sim.generator import EventGenerator
from vigil.sim.incidents import incident_to_record
from vigil.sim.population import Population, Role, build_population
from vigil.sim.scenario import Scenario

__all__ = ["ActionRecord", "SimulationResult", "run_scenario", "simulate", "write_truth"]

_URGENT_REASONS = frozenset({ReportReason.GROOMING, ReportReason.SEXTORTION})


@dataclass(frozen=True, slots=True)
class ActionRecord:
    user: UserId
    level: ProtectiveAction
    at_ms: int
    score: float
    reasons: tuple[str, ...]
    notified: int
    source: str = "risk"


@dataclass
class SimulationResult:
    scenario: Scenario
    population: Population
    generator: EventGenerator
    extractor: FeatureExtractor
    actions: list[ActionRecord]
    events: int
    seconds: float
    reports: list[ReportFiled]
    reviews: list[tuple[UserId, int, int, str]]


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
        review_after_ms: int | None = None,
        reviewer_restricts: Callable[[UserId], bool] | None = None,
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
        # A minor's grooming or sextortion report opens an urgent case (the server's priority_for): a
        # reviewer sees it within `review_after_ms` whatever the score, and restricts a harmful account.
        self.review_after_ms = review_after_ms
        self.reviewer_restricts = reviewer_restricts
        self.reviews: list[tuple[int, UserId]] = []
        # Every review the reviewer did: (account, report time, review time, outcome).
        self.reviewed: list[tuple[UserId, int, int, str]] = []
        self.reports: list[ReportFiled] = []

    def emit(self, event: MetadataEvent) -> None:
        while event.at_ms >= self.next_check:
            self.checkpoint(self.next_check)
            self.next_check += self.interval
        if self.reviews and self.reviews[0][0] <= event.at_ms:
            self._review(event.at_ms)  # the review bound holds between scoring checkpoints too
        if (
            self.review_after_ms is not None
            and isinstance(event, ReportFiled)
            and event.reason in _URGENT_REASONS
            and self.extractor.is_minor(event.reporter)
        ):
            self.reviews.append((event.at_ms + self.review_after_ms, event.reported))
        if isinstance(event, ReportFiled):
            self.reports.append(event)
        self.extractor.observe(event)
        self.events += 1
        if self.out is not None:
            self.out.write(json.dumps(event_to_record(event), separators=(",", ":")) + "\n")

    def may_contact_minors(self, user: int) -> bool:
        return user not in self.restricted

    def _review(self, now_ms: int) -> None:
        due = [(at, user) for at, user in self.reviews if at <= now_ms]
        if not due:
            return
        self.reviews = [(at, user) for at, user in self.reviews if at > now_ms]
        for at, user in sorted(due):
            reported_at = at - (self.review_after_ms or 0)
            previous = self.level.get(user, ProtectiveAction.NONE)
            if previous.severity >= ProtectiveAction.OPEN_CASE.severity:
                self.reviewed.append((user, reported_at, at, "already acted on"))
                continue
            if self.reviewer_restricts is None or not self.reviewer_restricts(user):
                self.reviewed.append((user, reported_at, at, "no action"))
                continue
            self.reviewed.append((user, reported_at, at, "restricted"))
            self.level[user] = ProtectiveAction.OPEN_CASE
            self.restricted.add(self.index_of[user])
            self.actions.append(
                ActionRecord(
                    user, ProtectiveAction.OPEN_CASE, at, 1.0, ("a minor's report, reviewed",), 0, "review"
                )
            )

    def checkpoint(self, now_ms: int) -> None:
        if self.on_checkpoint is not None:
            self.on_checkpoint(now_ms)
        self._review(now_ms)
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
    on_day: Callable[[int], None] | None = None,
    review: bool = True,
) -> SimulationResult:
    """Generate the scenario and run the behaviour pipeline over it; `model=None` only extracts features.

    `on_start(population, extractor)` is called once both exist; `on_checkpoint(now_ms)` at every scoring
    interval (training snapshots features there); `on_day(day)` after each simulated day (progress).
    `review` simulates the reviewer who sees every minor's grooming or sextortion report within
    `detection.minor_report_review_hours` (off for training: labels come from the ground truth).
    """
    t0 = time.perf_counter()
    pop = build_population(sc, rng)
    extractor = FeatureExtractor(window_days=sc.scoring.window_days)
    if on_start is not None:
        on_start(pop, extractor)
    interval = sc.scoring.interval_hours * HOUR_MS
    index_of = {u: i for i, u in enumerate(pop.ids)}
    review_rng = np.random.default_rng([sc.seed, 7])
    det = sc.detection

    def reviewer_restricts(user: UserId) -> bool:
        harmful = pop.roles[index_of[user]].harmful_to_minors
        return harmful and bool(review_rng.random() < det.review_accuracy)

    pipeline = _Pipeline(
        extractor,
        model,
        thresholds,
        interval,
        sc.start_ms + interval,
        events_out,
        on_checkpoint,
        int(det.minor_report_review_hours * HOUR_MS) if review else None,
        reviewer_restricts,
    )
    pipeline.index_of = index_of
    gen = EventGenerator(sc, pop, rng, pipeline, pipeline)
    for facts in gen.account_facts():
        extractor.register_account(facts)
    gen.emit_history()
    # History is not news: ties from before day 0 are established, not new contacts, and accounts are
    # scored for what they do from day 0 (the warm-up artefact: pre-window ties counted as new).
    extractor.mark_history(sc.start_ms)
    extractor.drain_dirty()
    for day in range(sc.days):
        gen.run_day(day)
        if on_day is not None:
            on_day(day)
    end = sc.start_ms + sc.days * DAY_MS
    while pipeline.next_check <= end:
        pipeline.checkpoint(pipeline.next_check)
        pipeline.next_check += interval
    return SimulationResult(
        sc,
        pop,
        gen,
        extractor,
        pipeline.actions,
        pipeline.events,
        time.perf_counter() - t0,
        pipeline.reports,
        pipeline.reviewed,
    )


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, separators=(",", ":")) + "\n")


class _SnapshotRecorder:
    """Feature vectors of adults who reached a minor, at the end of every simulated day."""

    def __init__(self, start_ms: int) -> None:
        self.start_ms = start_ms
        self.extractor: FeatureExtractor | None = None
        self.ids: list[UserId] = []
        self.adults: list[int] = []
        self.rows: list[np.ndarray] = []
        self.accounts: list[np.ndarray] = []
        self.days: list[np.ndarray] = []

    def start(self, pop: Population, extractor: FeatureExtractor) -> None:
        self.extractor = extractor
        self.ids = pop.ids
        self.adults = [i for i, r in enumerate(pop.roles) if r is not Role.MINOR]

    def checkpoint(self, now_ms: int) -> None:
        if self.extractor is None or (now_ms - self.start_ms) % DAY_MS:
            return
        x = self.extractor.feature_matrix([self.ids[i] for i in self.adults], now_ms)
        keep = x[:, FEATURE_NAMES.index("distinct_minors_contacted")] > 0
        self.rows.append(x[keep])
        self.accounts.append(np.asarray(self.adults, dtype=np.int64)[keep])
        self.days.append(np.full(int(keep.sum()), (now_ms - self.start_ms) // DAY_MS - 1, dtype=np.int64))

    def save(self, path: Path) -> None:
        from vigil.sim.robustness import save_snapshots

        width = len(FEATURE_NAMES)
        save_snapshots(
            path,
            np.concatenate(self.rows) if self.rows else np.empty((0, width)),
            np.concatenate(self.accounts) if self.accounts else np.empty(0, dtype=np.int64),
            np.concatenate(self.days) if self.days else np.empty(0, dtype=np.int64),
        )


def write_truth(out_dir: Path, gen: EventGenerator, pop: Population, reports: list[ReportFiled]) -> None:
    """`ground_truth.jsonl`, `incidents.jsonl` and `reports.jsonl` (the reports that reached the server,
    read by the retention comparison even when `events.jsonl` is not written). Raises OSError."""
    _write_jsonl(out_dir / "reports.jsonl", [event_to_record(r) for r in reports])
    _write_jsonl(
        out_dir / "ground_truth.jsonl",
        [
            {
                "u": pop.ids[i],
                "role": role.value,
                "modified_client": i in pop.modified_client,
                "harm_start_ms": gen.harm_start.get(i),
                "engaged_ms": gen.engaged.get(i) if gen.engaged.get(i, 2**62) < gen.end else None,
                "style": None if i not in pop.groomer_style else pop.groomer_style[i].value,
                "replaces": None if i not in pop.replaces else pop.ids[pop.replaces[i]],
                "new_account": i in pop.new_accounts,
                "prevented_requests": gen.prevented_requests.get(i, 0),
            }
            for i, role in enumerate(pop.roles)
        ],
    )
    _write_jsonl(out_dir / "incidents.jsonl", [incident_to_record(x) for x in gen.incidents])


def run_scenario(
    sc: Scenario,
    out_dir: Path,
    *,
    seed: int | None = None,
    model: RiskModel | None = None,
    on_day: Callable[[int], None] | None = None,
    snapshots: bool = True,
) -> SimulationResult:
    """CLI `vigil sim run`: simulate `sc` (with `seed` or the scenario's own) and write `out_dir`.

    Uses the shipped model unless one is given. With `snapshots`, also writes `snapshots.npz` (daily
    feature vectors of adults who reached a minor: the feature-AUC table and probes of `vigil sim score`).
    Raises StorageError if the directory cannot be written, ValidationError/StorageError if the shipped
    model is broken.
    """
    if seed is not None:
        sc = sc.model_copy(update={"seed": seed})
    model = model or load_default_model()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "scenario.json").write_text(sc.model_dump_json(indent=1) + "\n", encoding="utf-8")
        events_file = (out_dir / "events.jsonl").open("w", encoding="utf-8") if sc.write_events else None
        recorder = _SnapshotRecorder(sc.start_ms) if snapshots else None
        try:
            result = simulate(
                sc,
                rng=np.random.default_rng(sc.seed),
                model=model,
                events_out=events_file,
                on_day=on_day,
                on_start=None if recorder is None else recorder.start,
                on_checkpoint=None if recorder is None else recorder.checkpoint,
            )
        finally:
            if events_file is not None:
                events_file.close()
        gen, pop = result.generator, result.population
        _write_jsonl(out_dir / "accounts.jsonl", [facts_to_record(f) for f in gen.account_facts()])
        write_truth(out_dir, gen, pop, result.reports)
        if recorder is not None:
            recorder.save(out_dir / "snapshots.npz")
        _write_jsonl(
            out_dir / "reviews.jsonl",
            [{"u": u, "reported": r, "reviewed": t, "outcome": o} for u, r, t, o in result.reviews],
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
                    "source": a.source,
                }
                for a in result.actions
            ],
        )
        summary = {
            "scenario": sc.name,
            "seed": sc.seed,
            "mode": "fast",
            "model": model.version,
            "accounts": len(pop.ids),
            "roles": {r.value: pop.roles.count(r) for r in Role},
            "events": result.events,
            "incidents": len(gen.incidents),
            "actions": len(result.actions),
            "start_ms": sc.start_ms,
            "end_ms": sc.start_ms + sc.days * DAY_MS,
            "seconds": round(result.seconds, 2),
            # What the server's rules refused and what that made impossible, as server mode reports them.
            "refused": gen.refused,
            "skipped": gen.skipped,
        }
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        raise StorageError(f"cannot write simulation output to {out_dir}: {exc}") from exc
    return result

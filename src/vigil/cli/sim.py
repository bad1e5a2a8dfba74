"""`vigil sim`: run a population scenario, score its outcome, train the risk model."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from vigil.errors import ValidationError, VigilError

if TYPE_CHECKING:
    from vigil.sim.score import RunScore

__all__ = ["sim_app"]

sim_app = typer.Typer(
    help="Population simulator and evaluation (see docs/scenarios.md, docs/evaluation.md).",
    no_args_is_help=True,
)
console = Console()


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise ValidationError(f"--seeds: {text!r} is not a comma-separated list of integers") from exc
    if not seeds:
        raise ValidationError("--seeds: give at least one seed")
    return seeds


@contextmanager
def _days_bar(label: str, days: int, enabled: bool) -> Iterator[Callable[[int], None]]:
    """A progress bar over a run's simulated days; yields the `on_day` callback that advances it."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not enabled,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=days)
        yield lambda _day: bar.advance(task)


@sim_app.command("run")
def run(
    scenario: Path | None = typer.Option(None, help="Scenario YAML (default: the bundled default scenario)."),
    out: Path = typer.Option(..., help="Output directory (events, ground truth, incidents, actions)."),
    seed: int | None = typer.Option(None, help="Override the scenario's seed."),
    seeds: str | None = typer.Option(
        None, help="Several seeds, comma-separated: one run each, written to OUT/seed-N (fast mode)."
    ),
    model: Path | None = typer.Option(None, help="Risk model JSON to use instead of the shipped one."),
    mode: str = typer.Option(
        "fast", help="fast: the server's scoring code in-process; server: a real server over HTTP."
    ),
    progress: bool = typer.Option(True, help="Show a progress bar per run."),
) -> None:
    """Simulate a population and write what happened and what Vigil did."""
    from vigil.safety.behavior.model import RiskModel
    from vigil.sim.run import run_scenario
    from vigil.sim.scenario import default_scenario, load_scenario

    if mode not in ("fast", "server"):
        console.print("[red]error[/red]: --mode is fast or server")
        raise typer.Exit(2)
    try:
        chosen_model = RiskModel.load(model) if model is not None else None
        if mode == "server":
            import asyncio

            from vigil.sim.scenario import tiny_scenario
            from vigil.sim.server_mode import run_server_mode

            chosen = load_scenario(scenario) if scenario else tiny_scenario()
            with _days_bar(
                f"seed {chosen.seed if seed is None else seed}: days", chosen.days, progress
            ) as advance:
                served = asyncio.run(run_server_mode(chosen, out, seed=seed, on_day=advance))
            console.print(
                f"{served.accounts} accounts, {served.recorded} server events, {len(served.actions)} actions "
                f"in {served.seconds:.1f} s -> {out}"
            )
            return
        chosen = load_scenario(scenario) if scenario else default_scenario()
        plan = [(s, out / f"seed-{s}") for s in _seeds(seeds)] if seeds else [(seed, out)]
        for run_seed, run_out in plan:
            label = f"seed {chosen.seed if run_seed is None else run_seed}: days"
            with _days_bar(label, chosen.days, progress) as advance:
                result = run_scenario(chosen, run_out, seed=run_seed, model=chosen_model, on_day=advance)
            console.print(
                f"{result.events} events, {len(result.generator.incidents)} incidents, "
                f"{len(result.actions)} actions in {result.seconds:.1f} s -> {run_out}"
            )
    except VigilError as error:
        console.print(f"[red]error[/red] ({error.code}): {error.detail}")
        raise typer.Exit(1) from error


@sim_app.command("score")
def score(
    runs: list[Path] = typer.Argument(..., help="Directories written by `vigil sim run` (one per seed)."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the report as JSON here."),
    html_out: Path | None = typer.Option(None, "--html", help="Also write a self-contained HTML report."),
    model: Path | None = typer.Option(
        None, help="Model for the feature-AUC table and probes (default: the shipped one)."
    ),
) -> None:
    """Recall and false alarms, the retention table against a plaintext baseline, timings, probes."""
    from vigil.sim.score import format_evaluation, score_runs

    try:
        scored, agg = score_runs(runs)
        _add_model_sections(scored, runs, model)
        console.print(format_evaluation(scored, agg), highlight=False, soft_wrap=True)
        document = {"aggregate": agg, "runs": [r.to_json() for r in scored]}
        if json_out is not None:
            try:
                json_out.write_text(json.dumps(_public(document), indent=1) + "\n", encoding="utf-8")
            except OSError as exc:
                console.print(f"[red]error[/red]: cannot write {json_out}: {exc}")
                raise typer.Exit(1) from exc
        if html_out is not None:
            from vigil.sim.report_html import render_html

            try:
                html_out.write_text(render_html(scored, agg), encoding="utf-8")
            except OSError as exc:
                console.print(f"[red]error[/red]: cannot write {html_out}: {exc}")
                raise typer.Exit(1) from exc
    except VigilError as error:
        console.print(f"[red]error[/red] ({error.code}): {error.detail}")
        raise typer.Exit(1) from error


def _public(value: object) -> object:
    """Drop the terminal-only `_text` entries from the JSON document."""
    if isinstance(value, dict):
        return {k: _public(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, list):
        return [_public(v) for v in value]
    return value


def _add_model_sections(scored: list[RunScore], runs: list[Path], model: Path | None) -> None:
    """Feature-AUC table and robustness probes, when the run saved its feature snapshots."""
    from vigil.sim.robustness import add_model_sections

    add_model_sections(scored, runs, model)


@sim_app.command("train")
def train(
    scenario: Path | None = typer.Option(None, help="Scenario YAML (default: the bundled default)."),
    save_to: Path = typer.Option(..., help="Where to write the model JSON."),
) -> None:
    """Train the risk model on simulated populations (needs scikit-learn)."""
    from vigil.sim.scenario import default_scenario, load_scenario
    from vigil.sim.train import train_model

    model = train_model(load_scenario(scenario) if scenario else default_scenario(), save_to=save_to)
    console.print(f"trained {model.version} -> {save_to}")

"""`vigil sim`: run a population scenario, score its outcome, train the risk model."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from vigil.errors import VigilError

__all__ = ["sim_app"]

sim_app = typer.Typer(
    help="Population simulator and evaluation (see docs/scenarios.md).", no_args_is_help=True
)
console = Console()


@sim_app.command("run")
def run(
    scenario: Path | None = typer.Option(None, help="Scenario YAML (default: the bundled default scenario)."),
    out: Path = typer.Option(..., help="Output directory (events, ground truth, actions)."),
    seed: int | None = typer.Option(None, help="Override the scenario's seed."),
    mode: str = typer.Option(
        "fast", help="fast: the server's scoring code in-process; server: a real server over HTTP."
    ),
) -> None:
    """Simulate a population and write what happened and what Vigil did."""
    from vigil.sim.run import run_scenario
    from vigil.sim.scenario import default_scenario, load_scenario

    if mode not in ("fast", "server"):
        console.print("[red]error[/red]: --mode is fast or server")
        raise typer.Exit(2)
    try:
        if mode == "server":
            import asyncio

            from vigil.sim.scenario import tiny_scenario
            from vigil.sim.server_mode import run_server_mode

            chosen = load_scenario(scenario) if scenario else tiny_scenario()
            served = asyncio.run(run_server_mode(chosen, out, seed=seed))
            console.print(
                f"{served.accounts} accounts, {served.recorded} server events, {len(served.actions)} actions "
                f"in {served.seconds:.1f} s -> {out}"
            )
            return
        chosen = load_scenario(scenario) if scenario else default_scenario()
        result = run_scenario(chosen, out, seed=seed)
    except VigilError as error:
        console.print(f"[red]error[/red] ({error.code}): {error.detail}")
        raise typer.Exit(1) from error
    console.print(f"{result.events} events, {len(result.actions)} actions in {result.seconds:.1f} s -> {out}")


@sim_app.command("score")
def score(out: Path = typer.Argument(..., help="A directory written by `vigil sim run`.")) -> None:
    """Per-type recall and precision, false alarms on families and coaches, time to first action."""
    from vigil.sim.score import format_report, score_dir

    try:
        console.print(format_report(score_dir(out)), highlight=False)
    except VigilError as error:
        console.print(f"[red]error[/red] ({error.code}): {error.detail}")
        raise typer.Exit(1) from error


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

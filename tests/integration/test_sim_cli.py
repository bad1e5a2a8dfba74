"""`vigil sim run` then `vigil sim score` as a user runs them (in-process, `cli_runner`), on a small
scenario."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from cli_runner import vigil

from vigil.sim.scenario import default_scenario


def test_sim_run_and_score(tmp_path: Path) -> None:
    scenario = default_scenario().model_dump(mode="json")
    scenario["days"] = 7
    scenario["population"].update(
        minors=600, adults=700, coaches=10, groomers=8, sextortion=8, ring_members=6, school_size=200
    )
    scenario_path = tmp_path / "small.yaml"
    scenario_path.write_text(yaml.safe_dump(scenario))
    out = tmp_path / "out"
    run = vigil("sim", "run", "--scenario", str(scenario_path), "--out", str(out), "--seed", "7")
    assert run.returncode == 0, run.stdout + run.stderr
    assert (out / "ground_truth.jsonl").is_file() and (out / "actions.jsonl").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary
    score = vigil("sim", "score", str(out))
    assert score.returncode == 0, score.stderr
    assert "groomer" in score.stdout.lower() and "recall" in score.stdout.lower()
    bad = tmp_path / "bad.yaml"
    bad.write_text("population: {size: -3}\n")
    failed = vigil("sim", "run", "--scenario", str(bad), "--out", str(tmp_path / "x"))
    assert failed.returncode == 1 and "invalid_request" in failed.stdout

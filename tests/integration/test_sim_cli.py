"""`vigil sim run` then `vigil sim score` as a user runs them, on a small scenario."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

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
    env = {**os.environ, "COLUMNS": "200"}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "vigil",
            "sim",
            "run",
            "--scenario",
            str(scenario_path),
            "--out",
            str(out),
            "--seed",
            "7",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert (out / "ground_truth.jsonl").is_file() and (out / "actions.jsonl").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary
    score = subprocess.run(
        [sys.executable, "-m", "vigil", "sim", "score", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert score.returncode == 0, score.stderr
    assert "groomer" in score.stdout.lower() and "recall" in score.stdout.lower()
    bad = tmp_path / "bad.yaml"
    bad.write_text("population: {size: -3}\n")
    failed = subprocess.run(
        [sys.executable, "-m", "vigil", "sim", "run", "--scenario", str(bad), "--out", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert failed.returncode == 1 and "invalid_request" in failed.stdout

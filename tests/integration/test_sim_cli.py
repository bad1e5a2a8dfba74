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


def test_sim_seeds_score_json_and_html(tmp_path: Path) -> None:
    scenario = default_scenario().model_dump(mode="json")
    scenario["days"] = 5
    scenario["population"].update(
        minors=400, adults=450, coaches=6, groomers=8, sextortion=8, ring_members=6, school_size=200
    )
    scenario["groups"].update(interest_groups=6)
    scenario["write_events"] = False
    scenario_path = tmp_path / "small.yaml"
    scenario_path.write_text(yaml.safe_dump(scenario))
    out = tmp_path / "out"
    run = vigil("sim", "run", "--scenario", str(scenario_path), "--out", str(out), "--seeds", "1,2")
    assert run.returncode == 0, run.stdout + run.stderr
    dirs = [out / "seed-1", out / "seed-2"]
    for d in dirs:
        assert json.loads((d / "summary.json").read_text())["seed"] in (1, 2)
        assert (d / "incidents.jsonl").stat().st_size > 0 and (d / "snapshots.npz").is_file()
    report_json, report_html = tmp_path / "report.json", tmp_path / "report.html"
    score = vigil("sim", "score", *map(str, dirs), "--json", str(report_json), "--html", str(report_html))
    assert score.returncode == 0, score.stdout + score.stderr
    assert "retention" in score.stdout and "ring_distribution" in score.stdout
    doc = json.loads(report_json.read_text())
    assert doc["aggregate"]["seeds"] == [1, 2] and len(doc["runs"]) == 2
    ring = doc["aggregate"]["retention"]["ring_distribution"]
    assert ring["happened"] > 0 and ring["reportable_vigil"] <= ring["reportable_plaintext"]
    assert set(doc["runs"][0]["probes"]["features"]) >= {"group_messages_per_day", "reply_ratio"}
    assert doc["runs"][0]["feature_auc"]["auc"]["minors_no_mutual_share"] is not None
    page = report_html.read_text()
    assert page.startswith("<!doctype html>") and page.count("<svg") >= 3
    assert "http://" not in page and "https://" not in page and "<script" not in page  # self-contained
    bad = vigil("sim", "run", "--out", str(tmp_path / "x"), "--seeds", "one,two")
    assert bad.returncode == 1 and "--seeds" in bad.stdout

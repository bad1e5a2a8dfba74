"""A model trained on one seed catches groomers and sextortion on another, with few false alarms.

Recall is over harmful accounts that engaged a minor (issue 11); false alarms are at restriction, over
the run and per week after warm-up. Figures measured when this was written are in docs/evaluation.md;
bounds leave a margin for seed-to-seed variation on a population this small.

The population (~2,500 accounts over a week) is as small as keeps those figures stable across seeds
(half of it let precision at restrict fall to the bound on one seed): the module's four simulations
take about 10 s of CPU.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vigil.safety.behavior.model import DEFAULT_MODEL_NAME, RiskModel, load_default_model
from vigil.safety.behavior.policy import ProtectiveAction
from vigil.sim.population import Role
from vigil.sim.run import run_scenario
from vigil.sim.scenario import Scenario, default_scenario
from vigil.sim.score import RunScore, aggregate, format_evaluation, format_report, score_dir, score_run
from vigil.sim.train import RECIPE_VERSION, train_model

NOTICE = ProtectiveAction.SAFETY_NOTICE
RESTRICT = ProtectiveAction.RESTRICT_MINOR_CONTACT
CASE = ProtectiveAction.OPEN_CASE


def small() -> Scenario:
    return default_scenario().with_overrides(
        name="small",
        days=7,
        population={
            "minors": 1000,
            "adults": 1200,
            "coaches": 27,
            "groomers": 20,
            "sextortion": 20,
            "ring_members": 8,
            "school_size": 200,
        },
        write_events=False,
    )


@pytest.fixture(scope="module")
def trained() -> RiskModel:
    return train_model(small(), train_seeds=(1,), calibration_seed=2)


@pytest.fixture(scope="module")
def held_out(trained: RiskModel, tmp_path_factory: pytest.TempPathFactory) -> RunScore:
    out = tmp_path_factory.mktemp("sim")
    run_scenario(small(), out, seed=3, model=trained)
    return score_run(out)


def _text(run: RunScore) -> str:
    return format_evaluation([run], aggregate([run]))


def test_catches_groomers_and_sextortion_on_another_seed(held_out: RunScore) -> None:
    # Over harmful accounts that engaged a minor (a minor accepted their contact).
    assert held_out.engaged["groomer"]["recall"] >= 0.8, _text(held_out)
    assert held_out.engaged["sextortion"]["recall"] >= 0.9, _text(held_out)
    assert held_out.roles.recall(Role.SEXTORTION, CASE) >= 0.8, _text(held_out)


def test_few_false_alarms_on_coaches_and_families(held_out: RunScore) -> None:
    text = _text(held_out)
    assert held_out.roles.false_alarm(Role.COACH, RESTRICT) <= 0.05, text
    assert held_out.roles.family_false_alarm[RESTRICT] <= 0.03, text
    assert held_out.roles.family_false_alarm[CASE] <= 0.02, text
    # After the first week (warm-up), at most 1% of families are newly restricted.
    assert all(v <= 0.01 for v in held_out.weekly_false_alarms["families"][1:]), text


def test_a_retrain_is_named_after_its_recipe_not_the_shipped_model(trained: RiskModel) -> None:
    assert trained.version == RECIPE_VERSION != DEFAULT_MODEL_NAME


def test_acts_quickly(held_out: RunScore) -> None:
    hours = sorted(held_out.hours_from_contact)
    assert hours and hours[len(hours) // 2] <= 48, _text(held_out)


def test_shipped_model_loads_and_acts(tmp_path: Path) -> None:
    model = load_default_model()
    assert model.version == "risk-v2"
    result = run_scenario(small(), tmp_path, seed=4, model=model)
    report = score_dir(tmp_path)
    assert report.recall(Role.SEXTORTION, RESTRICT) >= 0.8, format_report(report)
    assert report.family_false_alarm[RESTRICT] <= 0.03, format_report(report)
    assert all(a.reasons for a in result.actions)  # every decision comes with reasons
    for name in (
        "scenario.json",
        "accounts.jsonl",
        "ground_truth.jsonl",
        "incidents.jsonl",
        "reports.jsonl",
        "snapshots.npz",
        "actions.jsonl",
        "summary.json",
    ):
        assert (tmp_path / name).exists()

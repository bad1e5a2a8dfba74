"""A model trained on one seed catches groomers and sextortion on another, with few false alarms.

Measured on seed 3 (model fitted on seed 1, thresholds on seed 2): groomer recall 100% at notice and
restrict; sextortion 100% at every level; coaches 0%; families 2.9% / 0.7% / 0.1%; precision at restrict
89%; median hours to first action 2.8 (groomer), 4.4 (sextortion). Held out on seeds 5 and 6 instead:
groomer recall 95% / 100%, precision at restrict 89% / 85%, families at most 3.6% / 0.9% / 0.4%. The
shipped model on seed 4: sextortion restrict 100%, families restrict 0.8%. Bounds leave a margin.

The population (~2,500 accounts over a week) is as small as keeps those figures stable across seeds
(half of it let precision at restrict fall to the bound on one seed): the module's four simulations
take about 10 s of CPU.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vigil.safety.behavior.model import RiskModel, load_default_model
from vigil.safety.behavior.policy import ProtectiveAction
from vigil.sim.population import Role
from vigil.sim.run import run_scenario
from vigil.sim.scenario import Scenario, default_scenario
from vigil.sim.score import ScoreReport, format_report, score_dir
from vigil.sim.train import train_model

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
def held_out(trained: RiskModel, tmp_path_factory: pytest.TempPathFactory) -> ScoreReport:
    out = tmp_path_factory.mktemp("sim")
    run_scenario(small(), out, seed=3, model=trained)
    return score_dir(out)


def test_catches_groomers_and_sextortion_on_another_seed(held_out: ScoreReport) -> None:
    text = format_report(held_out)
    assert held_out.recall(Role.GROOMER, RESTRICT) >= 0.85, text
    assert held_out.recall(Role.SEXTORTION, RESTRICT) >= 0.9, text
    assert held_out.recall(Role.GROOMER, NOTICE) >= 0.85, text
    assert held_out.recall(Role.SEXTORTION, CASE) >= 0.85, text


def test_few_false_alarms_on_coaches_and_families(held_out: ScoreReport) -> None:
    text = format_report(held_out)
    assert held_out.false_alarm(Role.COACH, NOTICE) <= 0.10, text
    assert held_out.false_alarm(Role.COACH, RESTRICT) <= 0.05, text
    assert held_out.family_false_alarm[NOTICE] <= 0.06, text
    assert held_out.family_false_alarm[RESTRICT] <= 0.03, text
    assert held_out.family_false_alarm[CASE] <= 0.015, text
    assert held_out.false_alarm(Role.ADULT, NOTICE) == 0.0, text  # adults who never reach minors
    precision = held_out.precision[RESTRICT]
    assert precision is not None and precision >= 0.75, text


def test_acts_quickly(held_out: ScoreReport) -> None:
    for role in (Role.GROOMER, Role.SEXTORTION):
        hours = held_out.hours_to_first_action[role]
        assert hours is not None and hours[0] <= 12, format_report(held_out)


def test_shipped_model_loads_and_acts(tmp_path: Path) -> None:
    model = load_default_model()
    assert model.version == "risk-v1"
    result = run_scenario(small(), tmp_path, seed=4, model=model)
    report = score_dir(tmp_path)
    assert report.recall(Role.SEXTORTION, RESTRICT) >= 0.8, format_report(report)
    assert report.family_false_alarm[RESTRICT] <= 0.05, format_report(report)
    assert all(a.reasons for a in result.actions)  # every decision comes with reasons
    for name in ("scenario.json", "accounts.jsonl", "ground_truth.jsonl", "actions.jsonl", "summary.json"):
        assert (tmp_path / name).exists()

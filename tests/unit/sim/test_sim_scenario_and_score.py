"""Scenario validation names the bad field; scoring is right on a tiny hand-made ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vigil.errors import StorageError, ValidationError
from vigil.safety.behavior.events import UserId
from vigil.safety.behavior.features import HOUR_MS
from vigil.safety.behavior.policy import ProtectiveAction as A
from vigil.sim.population import Role
from vigil.sim.run import simulate
from vigil.sim.scenario import Scenario, default_scenario, load_scenario, parse_scenario
from vigil.sim.score import GroundTruth, format_report, score_outcomes


def test_default_scenario_is_valid() -> None:
    sc = default_scenario()
    assert sc.name == "default" and sc.population.groomers > 0


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"population": {"minors": -1}}, "population.minors"),
        ({"groomers": {"accept_prob": 1.5}}, "groomers.accept_prob"),
        ({"groomers": {"accept_prob": 0.8, "decline_prob": 0.5}}, "groomers"),
        ({"populaton": {}}, "populaton"),
        ({"coaches": {"team_size": [30, 10]}}, "team_size"),
        ({"sextortion": {"targets_per_day": "many"}}, "sextortion.targets_per_day"),
        ({"rings": {"ring_size": [1, 3]}}, "ring_size"),
        ({"days": 0}, "days"),
    ],
)
def test_bad_field_is_named(doc: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError, match=field.replace(".", r"\.")):
        parse_scenario(doc)


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        load_scenario(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("population: [unclosed\n")
    with pytest.raises(ValidationError, match="YAML"):
        load_scenario(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ValidationError, match="mapping"):
        load_scenario(bad)
    good = tmp_path / "good.yaml"
    good.write_text("name: tiny\npopulation:\n  minors: 10\n")
    assert load_scenario(good).population.minors == 10


def test_generation_is_seeded_and_has_ground_truth() -> None:
    sc = Scenario().with_overrides(
        days=3,
        population={
            "minors": 200,
            "adults": 200,
            "coaches": 3,
            "groomers": 3,
            "sextortion": 3,
            "ring_members": 4,
        },
    )
    runs = [simulate(sc, rng=np.random.default_rng(5), model=None) for _ in range(2)]
    assert runs[0].events == runs[1].events > 1000
    assert runs[0].generator.harm_start == runs[1].generator.harm_start
    pop = runs[0].population
    originals = [i for i, r in enumerate(pop.roles) if r is Role.GROOMER and i not in pop.replaces]
    assert len(originals) == 3 and pop.rings and len(set(pop.ids)) == len(pop.ids)
    # Dormant replacements are groomers or sextortion accounts standing in for one of the originals.
    assert all(pop.roles[spare] is pop.roles[original] for spare, original in pop.replaces.items())


def test_score_on_hand_made_truth() -> None:
    u = UserId
    truth = [
        GroundTruth(u("g1"), Role.GROOMER, harm_start_ms=0),
        GroundTruth(u("g2"), Role.GROOMER, harm_start_ms=0),
        GroundTruth(u("s1"), Role.SEXTORTION, harm_start_ms=10 * HOUR_MS),
        GroundTruth(u("c1"), Role.COACH),
        GroundTruth(u("c2"), Role.COACH),
        GroundTruth(u("p1"), Role.PARENT),
        GroundTruth(u("r1"), Role.RELATIVE),
        GroundTruth(u("a1"), Role.ADULT),
    ]
    actions = [
        (u("g1"), A.SAFETY_NOTICE, 2 * HOUR_MS),
        (u("g1"), A.OPEN_CASE, 5 * HOUR_MS),
        (u("s1"), A.RESTRICT_MINOR_CONTACT, 14 * HOUR_MS),
        (u("c1"), A.SAFETY_NOTICE, HOUR_MS),
        (u("p1"), A.RESTRICT_MINOR_CONTACT, HOUR_MS),
    ]
    r = score_outcomes(truth, actions)
    assert r.recall(Role.GROOMER, A.SAFETY_NOTICE) == 0.5
    assert r.recall(Role.GROOMER, A.OPEN_CASE) == 0.5
    assert r.recall(Role.SEXTORTION, A.RESTRICT_MINOR_CONTACT) == 1.0
    assert r.recall(Role.SEXTORTION, A.OPEN_CASE) == 0.0
    assert r.false_alarm(Role.COACH, A.SAFETY_NOTICE) == 0.5
    assert r.false_alarm(Role.COACH, A.RESTRICT_MINOR_CONTACT) == 0.0
    assert r.family_false_alarm[A.SAFETY_NOTICE] == 0.5  # p1 of {p1, r1}
    assert r.family_false_alarm[A.OPEN_CASE] == 0.0
    assert r.precision[A.SAFETY_NOTICE] == 0.5  # g1, s1 of g1, s1, c1, p1
    assert r.precision[A.RESTRICT_MINOR_CONTACT] == pytest.approx(2 / 3)
    assert r.precision[A.OPEN_CASE] == 1.0
    assert r.hours_to_first_action[Role.GROOMER] == (2.0, 2.0)
    assert r.hours_to_first_action[Role.SEXTORTION] == (4.0, 4.0)
    assert "groomer" in format_report(r)
    assert r.to_json()["roles"]["coach"]["safety_notice"] == 0.5
    with pytest.raises(ValidationError, match="ghost"):
        score_outcomes(truth, [(u("ghost"), A.OPEN_CASE, 0)])

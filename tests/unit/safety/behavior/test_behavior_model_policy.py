"""Risk model serialisation, scoring, reasons; the policy ladder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vigil.errors import StorageError, ValidationError
from vigil.safety.behavior.assessment import RiskAssessment
from vigil.safety.behavior.events import UserId
from vigil.safety.behavior.features import (
    ACCOUNT_CONTROLLED,
    FEATURE_NAMES,
    FEATURE_SPECS,
    MINOR_DRIVEN,
    FeatureVector,
)
from vigil.safety.behavior.model import RiskModel, fit_risk_model, load_default_model
from vigil.safety.behavior.policy import ProtectiveAction, Thresholds, decide

N = len(FEATURE_NAMES)
MINORS = FEATURE_NAMES.index("distinct_minors_contacted")
BLOCKS = FEATURE_NAMES.index("blocks_received_from_minors")


def toy_model() -> RiskModel:
    rng = np.random.default_rng(0)
    x = rng.random((400, N))
    y = np.zeros(400, dtype=np.int_)
    y[:40] = 1
    x[:40, MINORS] += 20  # harmful: many minors, many blocks
    x[:40, BLOCKS] += 5
    return fit_risk_model(x, y, version="toy-1")


def test_fit_score_and_reasons() -> None:
    model = toy_model()
    risky = [0.5] * N
    risky[MINORS], risky[BLOCKS] = 25.0, 6.0
    a = model.assess(FeatureVector(UserId("x"), 1, tuple(risky)))
    b = model.assess(FeatureVector(UserId("y"), 1, tuple([0.5] * N)))
    assert a.score > 0.9 > 0.1 > b.score
    assert {r.feature for r in a.reasons} >= {"distinct_minors_contacted", "blocks_received_from_minors"}
    assert any(r.text == "contacted 25 distinct minors" for r in a.reasons)
    assert b.reasons == ()
    batch = model.assess_matrix([UserId("x"), UserId("y")], 1, np.array([risky, [0.5] * N]))
    assert [r.score for r in batch] == pytest.approx([a.score, b.score])


def test_json_round_trip_without_pickle(tmp_path: Path) -> None:
    model = toy_model()
    path = tmp_path / "m.json"
    model.save(path)
    again = RiskModel.load(path)
    x = np.random.default_rng(1).random((5, N))
    assert again.score_matrix(x) == pytest.approx(model.score_matrix(x), abs=1e-6)
    doc = json.loads(path.read_text())
    doc["feature_names"] = doc["feature_names"][:-1]
    with pytest.raises(ValidationError, match="other features"):
        RiskModel.from_json(doc)
    with pytest.raises(StorageError):
        RiskModel.load(tmp_path / "missing.json")
    with pytest.raises(ValidationError):
        fit_risk_model(np.zeros((3, N)), np.zeros(3, dtype=np.int_), version="x")


def test_shipped_model_is_valid() -> None:
    model = load_default_model()
    assert model.version == "risk-v2"
    th = model.thresholds
    assert 0.5 <= th.safety_notice <= th.restrict_minor_contact <= th.open_case < 1


def test_shipped_model_ignores_the_features_added_after_it_was_trained() -> None:
    # risk-v2 predates the last three features: they are appended unused, so it scores exactly as trained.
    model = load_default_model()
    added = model.metadata["padded_features"]
    assert added and list(model.feature_names[-len(added) :]) == added
    for name in added:
        i = model.feature_names.index(name)
        assert model.coef[i] == 0 and model.direction[i] == 0


def test_policy_ladder() -> None:
    th = Thresholds(0.5, 0.8, 0.95)
    kids = [UserId("k1"), UserId("k2")]

    def at(score: float, adult: bool = True, minors: list[UserId] = kids) -> ProtectiveAction:
        a = RiskAssessment(UserId("x"), 0, score, (), "v")
        return decide(a, is_adult=adult, minors_contacted=minors, thresholds=th).level

    assert at(0.1) is ProtectiveAction.NONE
    assert at(0.5) is ProtectiveAction.SAFETY_NOTICE
    assert at(0.85) is ProtectiveAction.RESTRICT_MINOR_CONTACT
    assert at(0.99) is ProtectiveAction.OPEN_CASE
    assert at(0.99, adult=False) is ProtectiveAction.NONE
    assert at(0.99, minors=[]) is ProtectiveAction.NONE
    d = decide(
        RiskAssessment(UserId("x"), 0, 0.9, (), "v"), is_adult=True, minors_contacted=kids, thresholds=th
    )
    assert d.actions == {ProtectiveAction.SAFETY_NOTICE, ProtectiveAction.RESTRICT_MINOR_CONTACT}
    assert d.notify == tuple(kids)
    with pytest.raises(ValidationError, match="non-decreasing"):
        Thresholds(0.9, 0.5, 0.95)
    with pytest.raises(ValidationError):
        Thresholds(-0.1, 0.5, 0.95)


@pytest.mark.parametrize("model", [toy_model(), load_default_model()], ids=["toy", "shipped"])
def test_account_controlled_features_cannot_lower_risk_below_baseline(model: RiskModel) -> None:
    """Issue 11: whatever an account does with a feature it controls, its score does not fall below what
    it would be with that feature at a typical benign value, nor below the model's floor."""
    rng = np.random.default_rng(3)
    x = rng.random((50, N)) * 5
    base = model.score_matrix(x)
    assert (base >= model.floor - 1e-12).all()
    assert all(c >= 0 for c in model.coef)
    for name in ACCOUNT_CONTROLLED:
        col = FEATURE_NAMES.index(name)
        direction = FEATURE_SPECS[col].direction
        for extreme in (0.0, 1e6):
            pushed = x.copy()
            pushed[:, col] = extreme
            scores = model.score_matrix(pushed)
            assert (scores >= model.floor - 1e-12).all(), name
            toward_benign = (extreme == 0.0 and direction > 0) or (extreme == 1e6 and direction < 0)
            if toward_benign:
                # Moving a lever to its benign extreme only removes that feature's own push upward:
                # the score is exactly what the rest of the features make it, never lower.
                rest = x.copy()
                rest[:, col] = np.nan
                others = np.delete(np.arange(N), col)
                z = model._scaled(np.where(np.isnan(rest), 0.0, rest))
                floor_here = 1 / (1 + np.exp(-(z[:, others] @ model.coef[others] + model.intercept)))
                assert scores == pytest.approx(floor_here), name
    # The old failure: heavy group posting made a risky account look benign. Now it changes nothing.
    col = FEATURE_NAMES.index("group_messages_per_day")
    busy = x.copy()
    busy[:, col] = 50.0
    assert model.score_matrix(busy) == pytest.approx(base)


def test_minor_driven_features_are_not_account_levers_and_only_raise_risk() -> None:
    """The signals the minors set (refusals, silence, blocks, reports) are not in the list of levers a
    probe pushes, and each may only raise risk as it grows."""
    assert set(MINOR_DRIVEN).isdisjoint(ACCOUNT_CONTROLLED)
    assert set(MINOR_DRIVEN) <= set(FEATURE_NAMES)
    for name in MINOR_DRIVEN:
        assert FEATURE_SPECS[FEATURE_NAMES.index(name)].direction == 1, name


def test_a_non_monotone_document_is_refused() -> None:
    doc = toy_model().to_json()
    doc["coef"][0] = -1.0
    with pytest.raises(ValidationError, match="non-negative"):
        RiskModel.from_json(doc)
    doc = toy_model().to_json()
    doc["format"] = "vigil-behavior-logreg/1"
    with pytest.raises(ValidationError, match="retrain"):
        RiskModel.from_json(doc)

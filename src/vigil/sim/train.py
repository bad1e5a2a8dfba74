"""Train the behavioural risk model on simulated populations and calibrate its action thresholds.

Training examples are feature snapshots of adults who reached at least one minor in the window (the only
accounts the policy can act on), taken at every scoring checkpoint. Harmful accounts count from their first
contact with a minor; insiders (who abuse an existing tie) are left out, scored but not learnt from.
Thresholds are calibrated on a *different* seed than the model was fitted on, from
each benign account's highest score over the run, so that a threshold's false-alarm rate is per account
over the whole period, not per snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from vigil.errors import ValidationError
from vigil.safety.behavior.events import UserId
from vigil.safety.behavior.features import FEATURE_NAMES, FeatureExtractor
from vigil.safety.behavior.model import RiskModel, fit_risk_model
from vigil.safety.behavior.policy import Thresholds
from vigil.sim.population import Population, Role
from vigil.sim.run import simulate
from vigil.sim.scenario import Scenario

# Scores saturate: a quantile of 1.0 would make a rung unreachable. The top rung stays just below it.
_HIGHEST_THRESHOLD = 0.999999

__all__ = ["CalibrationTargets", "Snapshots", "calibrate_thresholds", "collect_snapshots", "train_model"]


@dataclass(frozen=True)
class Snapshots:
    x: npt.NDArray[np.float64]
    harmful: npt.NDArray[np.int_]
    account: npt.NDArray[np.int_]  # index into `roles`
    roles: list[Role]


@dataclass(frozen=True)
class CalibrationTargets:
    """Highest share of benign accounts (that contacted minors) allowed to reach each level."""

    safety_notice: float = 0.03
    restrict_minor_contact: float = 0.01
    open_case: float = 0.003
    floor: tuple[float, float, float] = (0.5, 0.7, 0.9)


def collect_snapshots(sc: Scenario, seed: int) -> Snapshots:
    """Simulate `sc` with `seed` (no model, no enforcement); snapshot adults at every scoring checkpoint.

    Snapshots follow the deployed scoring cadence so the model sees early-morning, few-message states too.
    """
    minors_col = FEATURE_NAMES.index("distinct_minors_contacted")
    state: dict[str, object] = {}
    adults: list[int] = []
    ids: list[UserId] = []
    rows: list[npt.NDArray[np.float64]] = []
    stamps: list[tuple[int, npt.NDArray[np.int_]]] = []

    def start(pop: Population, ex: FeatureExtractor) -> None:
        state["extractor"] = ex
        ids.extend(pop.ids)
        adults.extend(i for i, r in enumerate(pop.roles) if r is not Role.MINOR)

    def snapshot(now_ms: int) -> None:
        ex = state["extractor"]
        if not isinstance(ex, FeatureExtractor):
            return
        x = ex.feature_matrix([ids[i] for i in adults], now_ms)
        keep = x[:, minors_col] > 0
        rows.append(x[keep])
        stamps.append((now_ms, np.asarray(adults, dtype=np.int_)[keep]))

    sc = sc.model_copy(update={"seed": seed})
    result = simulate(
        sc, rng=np.random.default_rng(seed), model=None, on_checkpoint=snapshot, on_start=start, review=False
    )
    harm_start = result.generator.harm_start
    roles = result.population.roles
    xs, ys, accts = [], [], []
    for (now, who), x in zip(stamps, rows, strict=True):
        for row, i in zip(x, who.tolist(), strict=True):
            if roles[i] is Role.INSIDER:
                # An insider differs from a coach or relative only by the abuse itself; as a training
                # example it taught the model that coaching (adding minors to a team group) is harm.
                continue
            harmful = roles[i].harmful_to_minors
            if harmful and (i not in harm_start or now < harm_start[i]):
                continue  # before its first contact with a minor it is not (yet) an example of harm
            xs.append(row)
            ys.append(1 if harmful else 0)
            accts.append(i)
    width = len(FEATURE_NAMES)
    return Snapshots(
        np.array(xs, dtype=np.float64).reshape(-1, width), np.array(ys, dtype=np.int_), np.array(accts), roles
    )


def calibrate_thresholds(model: RiskModel, snaps: Snapshots, targets: CalibrationTargets) -> Thresholds:
    """Thresholds from benign accounts' highest scores. Raises ValidationError with no benign data."""
    scores = model.score_matrix(snaps.x)
    benign = snaps.harmful == 0
    if not benign.any():
        raise ValidationError("calibration data holds no benign accounts")
    best: dict[int, float] = {}
    for acct, s in zip(snaps.account[benign].tolist(), scores[benign].tolist(), strict=True):
        best[acct] = max(s, best.get(acct, 0.0))
    highest = np.array(sorted(best.values()))
    levels: list[float] = []
    for share, floor in zip(
        (targets.safety_notice, targets.restrict_minor_contact, targets.open_case), targets.floor, strict=True
    ):
        q = min(float(np.quantile(highest, 1.0 - share)), _HIGHEST_THRESHOLD)
        levels.append(round(max(floor, q, levels[-1] if levels else 0.0), 6))
    return Thresholds(*levels)


# What this recipe (features, constraints, calibration) produces: risk-v4 (its file, fitted on seeds
# 101-102 / 201, is in models/ for `--model`). The shipped model is risk-v2 (`model.DEFAULT_MODEL_NAME`,
# kept over risk-v4 in docs/evaluation.md): a retrain must not take its name.
RECIPE_VERSION = "risk-v4"


def train_model(
    sc: Scenario,
    *,
    train_seeds: Sequence[int] = (101, 102),
    calibration_seed: int = 201,
    version: str = RECIPE_VERSION,
    regularisation: float = 0.3,
    max_weight: float | None = 0.8,
    targets: CalibrationTargets | None = None,
    save_to: Path | None = None,
) -> RiskModel:
    """CLI `vigil sim train`: fit on `train_seeds`, calibrate on `calibration_seed`, optionally save JSON.

    Raises ValidationError if the scenario yields no harmful or no benign examples, StorageError if the
    file cannot be written.
    """
    parts = [collect_snapshots(sc, s) for s in train_seeds]
    x = np.concatenate([p.x for p in parts])
    y = np.concatenate([p.harmful for p in parts])
    # Each account counts once in total, however many daily snapshots it has: otherwise long-running
    # groomers would outweigh short-lived sextortion accounts.
    weights = []
    for p in parts:
        _, inverse, n_snaps = np.unique(p.account, return_inverse=True, return_counts=True)
        weights.append(1.0 / n_snaps[inverse])
    w = np.concatenate(weights)
    meta = {
        "scenario": sc.name,
        "train_seeds": list(train_seeds),
        "calibration_seed": calibration_seed,
        "examples": len(y),
        "harmful_examples": int(y.sum()),
        "max_weight": max_weight,
    }
    model = fit_risk_model(
        x,
        y,
        version=version,
        regularisation=regularisation,
        sample_weight=w,
        metadata=meta,
        max_weight=max_weight,
    )
    calib = collect_snapshots(sc, calibration_seed)
    thresholds = calibrate_thresholds(model, calib, targets or CalibrationTargets())
    model = RiskModel(**{**model.__dict__, "thresholds": thresholds})
    if save_to is not None:
        model.save(save_to)
    return model

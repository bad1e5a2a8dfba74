"""The behavioural risk model: a monotone logistic model over scaled features, shipped as JSON, run in numpy.

Why logistic regression: every decision must come with reasons a reviewer can check, and a linear model's
per-feature contributions *are* its reasoning (no post-hoc attribution). Why JSON: the model ships inside
the package and is loaded on the server; a pickle would be code execution for whoever can replace the file.
Training needs scipy (with scikit-learn's stack); scoring needs only numpy.

Why monotone (format 2, issue 11): the first model let features an account controls lower its risk without
bound (posting once a day in any group, a high reply ratio, many contacts or an aged account all pulled
a groomer's score down). Now each feature is a hinge at the benign baseline (the benign median in scaled
space): `max(0, direction * (z - baseline))` with a non-negative weight, so a feature can only *raise* risk
as it moves past a typical benign adult's value in its declared direction (`FeatureSpec.direction`), and
pushing it further toward benign values than the baseline changes nothing. Risk is therefore never below the
baseline `sigmoid(intercept)`, whatever the account does; features with direction 0 are not used.

Reasons are the features pushing the score up the most (their hinge contributions), phrased with the
account's own values ("contacted 9 distinct minors").
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from vigil.errors import StorageError, ValidationError
from vigil.safety.behavior.assessment import Reason, RiskAssessment
from vigil.safety.behavior.events import UserId
from vigil.safety.behavior.features import FEATURE_NAMES, FEATURE_SPECS, FeatureVector
from vigil.safety.behavior.policy import DEFAULT_THRESHOLDS, Thresholds

__all__ = [
    "DEFAULT_MODEL_NAME",
    "FORMAT",
    "RiskModel",
    "fit_risk_model",
    "load_default_model",
]

FORMAT = "vigil-behavior-monotone-logreg/2"
DEFAULT_MODEL_NAME = "risk-v2"
_MIN_REASON_CONTRIBUTION = 0.2  # log-odds; below this a feature is not what made the account stand out

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class RiskModel:
    version: str
    feature_names: tuple[str, ...]
    log_scale: npt.NDArray[np.bool_]
    mean: FloatArray
    scale: FloatArray
    coef: FloatArray  # non-negative
    intercept: float
    baseline: FloatArray  # benign median in scaled space: the hinge point
    direction: FloatArray  # +1, -1 or 0 per feature (FeatureSpec.direction)
    thresholds: Thresholds = DEFAULT_THRESHOLDS
    metadata: Mapping[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------------------ (de)serialisation
    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RiskModel:
        """Raises ValidationError if the document is malformed or was built for other features."""
        try:
            if data["format"] != FORMAT:
                raise ValidationError(
                    f"unsupported model format {data['format']!r} "
                    f"(expected {FORMAT}; retrain with `vigil sim train`)"
                )
            names = tuple(str(n) for n in data["feature_names"])
            if names != FEATURE_NAMES:
                raise ValidationError(
                    f"model {data.get('version')!r} was trained on other features; retrain it "
                    f"(missing {sorted(set(FEATURE_NAMES) - set(names))}, "
                    f"extra {sorted(set(names) - set(FEATURE_NAMES))})"
                )
            n = len(names)
            keys = ("mean", "scale", "coef", "baseline", "direction")
            arrays = {k: np.asarray(data[k], dtype=np.float64) for k in keys}
            if any(a.shape != (n,) for a in arrays.values()):
                raise ValidationError("model arrays do not match the feature count")
            if not all(np.isfinite(a).all() for a in arrays.values()) or np.any(arrays["scale"] <= 0):
                raise ValidationError("model arrays hold non-finite values or non-positive scales")
            if np.any(arrays["coef"] < 0) or not np.isin(arrays["direction"], (-1.0, 0.0, 1.0)).all():
                raise ValidationError(
                    "a monotone model needs non-negative weights and directions in -1, 0, 1"
                )
            th = data["thresholds"]
            return cls(
                version=str(data["version"]),
                feature_names=names,
                log_scale=np.asarray(data["log_scale"], dtype=np.bool_),
                mean=arrays["mean"],
                scale=arrays["scale"],
                coef=arrays["coef"],
                intercept=float(data["intercept"]),
                baseline=arrays["baseline"],
                direction=arrays["direction"],
                thresholds=Thresholds(
                    float(th["safety_notice"]), float(th["restrict_minor_contact"]), float(th["open_case"])
                ),
                metadata=dict(data.get("metadata", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(f"malformed model document: {exc!r}") from exc

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": self.version,
            "feature_names": list(self.feature_names),
            "log_scale": [bool(b) for b in self.log_scale],
            "mean": [round(float(v), 8) for v in self.mean],
            "scale": [round(float(v), 8) for v in self.scale],
            "coef": [round(float(v), 8) for v in self.coef],
            "intercept": round(self.intercept, 8),
            "baseline": [round(float(v), 8) for v in self.baseline],
            "direction": [int(v) for v in self.direction],
            "thresholds": {
                "safety_notice": self.thresholds.safety_notice,
                "restrict_minor_contact": self.thresholds.restrict_minor_contact,
                "open_case": self.thresholds.open_case,
            },
            "metadata": dict(self.metadata),
        }

    @classmethod
    def load(cls, path: Path) -> RiskModel:
        """Raises StorageError if unreadable, ValidationError if malformed."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise StorageError(f"cannot read model {path}: {exc}") from exc
        return cls.from_json(data)

    def save(self, path: Path) -> None:
        """Raises StorageError if the file cannot be written."""
        try:
            path.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")
        except OSError as exc:
            raise StorageError(f"cannot write model {path}: {exc}") from exc

    # -------------------------------------------------------------------------------------- scoring
    def _scaled(self, x: FloatArray) -> FloatArray:
        """Hinge activations: how far past the benign baseline each feature is, in its risky direction."""
        x = np.where(self.log_scale, np.log1p(np.maximum(x, 0.0)), x)
        z = (x - self.mean) / self.scale
        return np.maximum(0.0, self.direction * (z - self.baseline))

    def score_matrix(self, x: FloatArray) -> FloatArray:
        """Risk in 0..1 for each row of a (n, features) matrix."""
        z = self._scaled(np.asarray(x, dtype=np.float64))
        logit = z @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(logit, -50.0, 50.0)))

    @property
    def floor(self) -> float:
        """The lowest score any account can have: every feature at or on the benign side of its baseline."""
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, self.intercept))))

    def assess(self, features: FeatureVector, *, max_reasons: int = 3) -> RiskAssessment:
        x = np.asarray(features.values, dtype=np.float64)
        z = self._scaled(x)
        logit = float(z @ self.coef) + self.intercept
        score = 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, logit))))
        return RiskAssessment(
            features.user, features.at_ms, score, self._reasons(x, z, max_reasons), self.version
        )

    def assess_matrix(
        self, users: Sequence[UserId], at_ms: int, x: FloatArray, *, max_reasons: int = 3
    ) -> list[RiskAssessment]:
        """Batch `assess`: one vectorised pass, reasons per row. Raises ValidationError on a bad shape."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape != (len(users), len(self.feature_names)):
            raise ValidationError(f"feature matrix shape {x.shape} does not match {len(users)} users")
        z = self._scaled(x)
        scores = 1.0 / (1.0 + np.exp(-np.clip(z @ self.coef + self.intercept, -50.0, 50.0)))
        return [
            RiskAssessment(
                user, at_ms, float(scores[i]), self._reasons(x[i], z[i], max_reasons), self.version
            )
            for i, user in enumerate(users)
        ]

    def _reasons(self, x: FloatArray, z: FloatArray, max_reasons: int) -> tuple[Reason, ...]:
        contrib = self.coef * z
        order = np.argsort(-contrib)[:max_reasons]
        out = []
        for i in order:
            c = float(contrib[i])
            if c < _MIN_REASON_CONTRIBUTION:
                break
            spec = FEATURE_SPECS[int(i)]
            out.append(Reason(spec.name, float(x[i]), c, spec.reason.format(v=float(x[i]))))
        return tuple(out)


def load_default_model() -> RiskModel:
    """The model shipped in `vigil/safety/behavior/models/`. Raises StorageError/ValidationError if broken."""
    ref = resources.files("vigil.safety.behavior").joinpath("models", f"{DEFAULT_MODEL_NAME}.json")
    try:
        data = json.loads(ref.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise StorageError(f"cannot read the shipped model {DEFAULT_MODEL_NAME}: {exc}") from exc
    return RiskModel.from_json(data)


def fit_risk_model(
    x: FloatArray,
    y: npt.NDArray[np.int_],
    *,
    version: str,
    regularisation: float = 1.0,
    sample_weight: FloatArray | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    metadata: Mapping[str, Any] | None = None,
    max_weight: float | None = None,
) -> RiskModel:
    """Fit on a (n, features) matrix with labels 1 = harmful: class-balanced, L2-regularised logistic loss
    over the hinge activations with weights bounded to [0, max_weight] (scipy's L-BFGS-B). `max_weight`
    caps how much any one feature can carry, so no single lever decides a case.

    Raises ValidationError if the matrix has the wrong width or only one class.
    """
    from scipy.optimize import minimize  # training-time dependency only

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    if x.ndim != 2 or x.shape[1] != len(FEATURE_NAMES):
        raise ValidationError(f"expected a (n, {len(FEATURE_NAMES)}) matrix, got {x.shape}")
    if len(set(y.tolist())) != 2:
        raise ValidationError("training data needs both benign and harmful examples")
    log_scale = np.array([spec.log_scale for spec in FEATURE_SPECS], dtype=np.bool_)
    direction = np.array([float(spec.direction) for spec in FEATURE_SPECS])
    xt = np.where(log_scale, np.log1p(np.maximum(x, 0.0)), x)
    mean = xt.mean(axis=0)
    scale = xt.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = (xt - mean) / scale
    baseline = np.median(z[y == 0], axis=0)
    u = np.maximum(0.0, direction * (z - baseline))
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    pos = y == 1
    w = np.where(pos, w / w[pos].sum(), w / w[~pos].sum()) * 0.5  # balanced classes, total weight 1
    lam = 1e-3 / regularisation  # the loss is a weighted mean (total weight 1), so no 1/n here
    n = u.shape[1]

    def loss(theta: FloatArray) -> tuple[float, FloatArray]:
        coef, b = theta[:n], theta[n]
        logit = u @ coef + b
        p = 1.0 / (1.0 + np.exp(-np.clip(logit, -50.0, 50.0)))
        eps = 1e-12
        value = -float(np.sum(w * (pos * np.log(p + eps) + (~pos) * np.log(1 - p + eps))))
        value += 0.5 * lam * float(coef @ coef)
        g = w * (p - pos)
        return value, np.concatenate((u.T @ g + lam * coef, [g.sum()]))

    bounds = [(0.0, 0.0 if d == 0 else max_weight) for d in direction] + [(None, None)]
    fitted = minimize(loss, np.zeros(n + 1), jac=True, method="L-BFGS-B", bounds=bounds)
    theta = np.asarray(fitted.x, dtype=np.float64)
    return RiskModel(
        version=version,
        feature_names=FEATURE_NAMES,
        log_scale=log_scale,
        mean=mean,
        scale=scale,
        coef=np.maximum(theta[:n], 0.0),
        intercept=float(theta[n]),
        baseline=baseline,
        direction=direction,
        thresholds=thresholds,
        metadata=dict(metadata or {}),
    )

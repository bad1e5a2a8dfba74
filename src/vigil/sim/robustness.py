"""Model-specific sections of `vigil sim score`: per-feature AUC and robustness probes.

Both read `snapshots.npz`, which a fast-mode run writes: the feature vectors of every adult who reached a
minor, at the end of each simulated day, with the account's row in the ground truth. They score the
snapshots offline with a model (the shipped one unless `--model`), so they measure the model, not the
run's feedback loop:

* **feature AUC** — how well each feature alone separates harmful from benign snapshots (harmful ones
  from the account's first contact with a minor on). A feature near 1.0 is a near-label: it says more
  about how the generator was written than about the world.
* **probes** — for each feature the account itself controls, every harmful snapshot's value is pushed to
  the benign median (what an evader would imitate); recall at restriction is recomputed over the harmful
  accounts that engaged a minor, and compared with the unprobed recall.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from vigil.errors import StorageError
from vigil.safety.behavior.features import ACCOUNT_CONTROLLED, FEATURE_NAMES
from vigil.safety.behavior.model import RiskModel, load_default_model
from vigil.sim.score import RunScore

__all__ = ["add_model_sections", "feature_aucs", "load_snapshots", "probe_recall", "save_snapshots"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def save_snapshots(path: Path, x: FloatArray, account: IntArray, day: IntArray) -> None:
    """Raises OSError."""
    np.savez_compressed(
        path,
        x=x.astype(np.float32),
        account=account.astype(np.int32),
        day=day.astype(np.int32),
        features=np.array(FEATURE_NAMES),
    )


def load_snapshots(path: Path) -> tuple[FloatArray, IntArray, IntArray] | None:
    """None when the file is missing or was written for other features. Raises StorageError if unreadable."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if tuple(str(n) for n in data["features"]) != FEATURE_NAMES:
                return None
            return (
                data["x"].astype(np.float64),
                data["account"].astype(np.int64),
                data["day"].astype(np.int64),
            )
    except (OSError, KeyError, ValueError) as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc


def _auc(scores: FloatArray, labels: npt.NDArray[np.bool_]) -> float | None:
    """Rank AUC (ties count half). None with a single class."""
    pos, neg = int(labels.sum()), int((~labels).sum())
    if not pos or not neg:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    # Average ranks over ties.
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[labels].sum() - pos * (pos + 1) / 2) / (pos * neg))


def feature_aucs(x: FloatArray, harmful: npt.NDArray[np.bool_]) -> dict[str, float | None]:
    """Per feature, max(AUC, 1 - AUC): separation whichever way the feature points."""
    out: dict[str, float | None] = {}
    for i, name in enumerate(FEATURE_NAMES):
        a = _auc(x[:, i], harmful)
        out[name] = None if a is None else round(max(a, 1 - a), 4)
    return out


def probe_recall(
    model: RiskModel,
    x: FloatArray,
    account: IntArray,
    harmful: npt.NDArray[np.bool_],
    engaged: set[int],
    feature: str | None,
) -> float:
    """Share of engaged harmful accounts with any snapshot at or above the restriction threshold, after
    pushing `feature` (if given) to the benign median in every harmful snapshot."""
    x = x.copy()
    if feature is not None:
        col = FEATURE_NAMES.index(feature)
        x[harmful, col] = float(np.median(x[~harmful, col])) if (~harmful).any() else 0.0
    keep = np.isin(account, np.fromiter(engaged, dtype=np.int64, count=len(engaged))) & harmful
    if not engaged:
        return 0.0
    scores = model.score_matrix(x[keep])
    hit = {int(a) for a in account[keep][scores >= model.thresholds.restrict_minor_contact].tolist()}
    return len(hit) / len(engaged)


def add_model_sections(runs: Sequence[RunScore], dirs: Sequence[Path], model_path: Path | None) -> None:
    """Fill each run's `extra` with `feature_auc` and `probes` (and their terminal text)."""
    model = RiskModel.load(model_path) if model_path is not None else load_default_model()
    for run, directory in zip(runs, dirs, strict=True):
        loaded = load_snapshots(directory / "snapshots.npz")
        if loaded is None:
            continue
        x, account, day = loaded
        truth = [json.loads(line) for line in (directory / "ground_truth.jsonl").read_text().splitlines()]
        harmful_rows = {
            i for i, r in enumerate(truth) if r["role"] in ("groomer", "sextortion", "ring_member")
        }
        harm_day = {
            i: (int(r["harm_start_ms"]) - json.loads((directory / "scenario.json").read_text())["start_ms"])
            // 86_400_000
            for i, r in enumerate(truth)
            if r.get("harm_start_ms") is not None
        }
        is_harmful = np.array([int(a) in harmful_rows for a in account.tolist()], dtype=np.bool_)
        after = np.array(
            [not h or day[k] >= harm_day.get(int(account[k]), 1 << 30) for k, h in enumerate(is_harmful)],
            dtype=np.bool_,
        )
        x, account, is_harmful = x[after], account[after], is_harmful[after]
        engaged = {i for i, r in enumerate(truth) if i in harmful_rows and r.get("engaged_ms") is not None}
        aucs = feature_aucs(x, is_harmful)
        # Against the benign accounts whose contact with minors is legitimately new or wide (mentors,
        # coaches): the comparison a near-label hides when most benign adults who reach minors are family.
        hard = {i for i, r in enumerate(truth) if r["role"] in ("mentor", "coach")}
        hard_rows = np.array([int(a) in hard for a in account.tolist()], dtype=np.bool_) | is_harmful
        aucs_hard = feature_aucs(x[hard_rows], is_harmful[hard_rows])
        base = probe_recall(model, x, account, is_harmful, engaged, None)
        probes: dict[str, Any] = {}
        for name in ACCOUNT_CONTROLLED:
            r = probe_recall(model, x, account, is_harmful, engaged, name)
            probes[name] = {"recall": round(r, 4), "relative": round(r / base, 4) if base else None}
        run.extra["feature_auc"] = {
            "model": model.version,
            "auc": aucs,
            "auc_vs_mentors_and_coaches": aucs_hard,
        }
        run.extra["probes"] = {"model": model.version, "unprobed_recall": round(base, 4), "features": probes}
        top = sorted(((v or 0.0, k) for k, v in aucs.items()), reverse=True)
        auc_text = "\n".join(
            f"  {k:<36} {v:.3f}   vs mentors and coaches {_auc_text(aucs_hard[k])}" for v, k in top
        )
        probe_text = "\n".join(
            f"  {k:<34} recall {v['recall']:.1%}  ({_share(v['relative'])} of unprobed)"
            for k, v in probes.items()
        )
        run.extra["_text"] = {
            f"per-feature AUC (max of AUC, 1-AUC), model {model.version}": auc_text,
            f"probes: recall at restriction with one account-controlled feature at the benign median "
            f"(unprobed {base:.1%})": probe_text,
        }


def _auc_text(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _share(v: float | None) -> str:
    return "-" if v is None else f"{v:.0%}"

"""Score a simulation against its ground truth: per-role recall and false alarms, precision, time to act.

An account "reached" a level if any action it received was at that level or above. For harmful roles that
is recall; for benign roles it is the false-alarm rate (families = parents and relatives; coaches, whose
legitimate contact with many minors is the hardest benign case). Time to first protective action runs
from the harmful account's first contact with a minor to its first action of any level.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vigil.errors import StorageError, ValidationError
from vigil.safety.behavior.events import UserId
from vigil.safety.behavior.features import HOUR_MS
from vigil.safety.behavior.policy import ProtectiveAction
from vigil.sim.population import Role

__all__ = [
    "LEVELS",
    "GroundTruth",
    "RoleOutcome",
    "ScoreReport",
    "format_report",
    "read_jsonl",
    "score_dir",
    "score_outcomes",
]

LEVELS = (
    ProtectiveAction.SAFETY_NOTICE,
    ProtectiveAction.RESTRICT_MINOR_CONTACT,
    ProtectiveAction.OPEN_CASE,
)


@dataclass(frozen=True, slots=True)
class GroundTruth:
    user: UserId
    role: Role
    modified_client: bool = False
    harm_start_ms: int | None = None


@dataclass(frozen=True, slots=True)
class RoleOutcome:
    role: Role
    accounts: int
    reached: Mapping[ProtectiveAction, int]

    def rate(self, level: ProtectiveAction) -> float:
        return self.reached[level] / self.accounts if self.accounts else 0.0


@dataclass(frozen=True, slots=True)
class ScoreReport:
    roles: Mapping[Role, RoleOutcome]
    precision: Mapping[ProtectiveAction, float | None]  # None when nothing reached the level
    family_false_alarm: Mapping[ProtectiveAction, float]
    hours_to_first_action: Mapping[Role, tuple[float, float] | None]  # (median, p90) per harmful role

    def recall(self, role: Role, level: ProtectiveAction) -> float:
        return self.roles[role].rate(level) if role in self.roles else 0.0

    def false_alarm(self, role: Role, level: ProtectiveAction) -> float:
        return self.roles[role].rate(level) if role in self.roles else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "roles": {
                r.value: {"accounts": o.accounts, **{lv.value: round(o.rate(lv), 4) for lv in LEVELS}}
                for r, o in self.roles.items()
            },
            "precision": {lv.value: None if p is None else round(p, 4) for lv, p in self.precision.items()},
            "family_false_alarm": {lv.value: round(v, 4) for lv, v in self.family_false_alarm.items()},
            "hours_to_first_action": {
                r.value: None if v is None else {"median": round(v[0], 2), "p90": round(v[1], 2)}
                for r, v in self.hours_to_first_action.items()
            },
        }


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    idx = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[idx]


def score_outcomes(
    truth: Iterable[GroundTruth], actions: Iterable[tuple[UserId, ProtectiveAction, int]]
) -> ScoreReport:
    """Pure scoring. `actions` are (user, level, at_ms). Raises ValidationError for an unknown user."""
    truth_by_user = {t.user: t for t in truth}
    top: dict[UserId, ProtectiveAction] = {}
    first_at: dict[UserId, int] = {}
    for user, level, at in actions:
        if user not in truth_by_user:
            raise ValidationError(f"action for {user!r}, who is not in the ground truth")
        if level is ProtectiveAction.NONE:
            continue
        if user not in top or level.severity > top[user].severity:
            top[user] = level
        first_at[user] = min(at, first_at.get(user, at))

    counts: dict[Role, int] = {}
    reached: dict[Role, dict[ProtectiveAction, int]] = {}
    for t in truth_by_user.values():
        counts[t.role] = counts.get(t.role, 0) + 1
        per_level = reached.setdefault(t.role, dict.fromkeys(LEVELS, 0))
        got = top.get(t.user)
        for lv in LEVELS:
            if got is not None and got.severity >= lv.severity:
                per_level[lv] += 1
    roles = {r: RoleOutcome(r, counts[r], reached[r]) for r in Role if r in counts}

    precision: dict[ProtectiveAction, float | None] = {}
    for lv in LEVELS:
        total = sum(o.reached[lv] for o in roles.values())
        harmful = sum(o.reached[lv] for r, o in roles.items() if r.harmful_to_minors)
        precision[lv] = harmful / total if total else None
    families = [roles[r] for r in (Role.PARENT, Role.RELATIVE) if r in roles]
    n_fam = sum(o.accounts for o in families)
    family_fa = {lv: (sum(o.reached[lv] for o in families) / n_fam if n_fam else 0.0) for lv in LEVELS}

    delays: dict[Role, list[float]] = {r: [] for r in Role if r.harmful_to_minors}
    for user, at in first_at.items():
        t = truth_by_user[user]
        if t.role.harmful_to_minors and t.harm_start_ms is not None:
            delays[t.role].append(max(0, at - t.harm_start_ms) / HOUR_MS)
    hours = {
        r: (_quantile(sorted(d), 0.5), _quantile(sorted(d), 0.9)) if d else None for r, d in delays.items()
    }
    return ScoreReport(roles, precision, family_fa, hours)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Raises StorageError if unreadable or not JSON lines."""
    try:
        with path.open(encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except (OSError, json.JSONDecodeError) as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc


def score_dir(out_dir: Path) -> ScoreReport:
    """CLI `vigil sim score DIR`. Raises StorageError if files are missing, ValidationError if malformed."""
    try:
        truth = [
            GroundTruth(UserId(r["u"]), Role(r["role"]), bool(r["modified_client"]), r["harm_start_ms"])
            for r in read_jsonl(out_dir / "ground_truth.jsonl")
        ]
        actions = [
            (UserId(a["u"]), ProtectiveAction(a["level"]), int(a["t"]))
            for a in read_jsonl(out_dir / "actions.jsonl")
        ]
    except (KeyError, ValueError, TypeError) as exc:
        raise ValidationError(f"malformed simulation output in {out_dir}: {exc!r}") from exc
    return score_outcomes(truth, actions)


def format_report(report: ScoreReport) -> str:
    """A plain-text table for the terminal."""
    head = f"{'role':<12} {'accounts':>8}" + "".join(f" {lv.value:>22}" for lv in LEVELS)
    lines = [
        "share of accounts reaching each action level (recall for harmful roles, else false alarms)",
        head,
    ]
    for role, o in report.roles.items():
        mark = " *" if role.harmful_to_minors else ""
        cells = "".join(f" {o.rate(lv):>22.1%}" for lv in LEVELS)
        lines.append(f"{role.value + mark:<12} {o.accounts:>8}{cells}")
    lines.append(
        f"{'families':<12} {'':>8}" + "".join(f" {report.family_false_alarm[lv]:>22.1%}" for lv in LEVELS)
    )
    lines.append(
        f"{'precision':<12} {'':>8}"
        + "".join(f" {'-' if p is None else f'{p:.1%}':>22}" for p in report.precision.values())
    )
    for role, v in report.hours_to_first_action.items():
        text = "never acted on" if v is None else f"median {v[0]:.1f} h, p90 {v[1]:.1f} h"
        lines.append(f"time to first protective action, {role.value}: {text}")
    lines.append("* harmful to minors")
    return "\n".join(lines)

"""Score a simulation against its ground truth: per-role recall and false alarms, precision, time to act,
and (`score_run`, `score_runs`) the retention table against a plaintext-scanning baseline.

An account "reached" a level if any action it received was at that level or above. For harmful roles that
is recall; for benign roles it is the false-alarm rate (families = parents and relatives; coaches, whose
legitimate contact with many minors is the hardest benign case). Time to first protective action runs
from the harmful account's first contact with a minor to its first action of any level.

The headline recall is over harmful accounts that actually *engaged* a minor (a minor accepted their
contact), not over all harmful accounts: a groomer whose every request was declined harmed no one.
Precision at realistic prevalence (1%, 0.1%, 0.01% of adults harmful) is derived from the measured recall
and false-alarm rate (Bayes), because simulating 0.01% would take a million adults per seed.
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


# ------------------------------------------------------------------------------------------------------
# The full evaluation of one run directory, and its aggregate over seeds.

PREVALENCES = (0.01, 0.001, 0.0001)
_BENIGN_ADULTS = (Role.ADULT, Role.PARENT, Role.RELATIVE, Role.COACH, Role.MENTOR)
# Insiders abuse a tie they already have; metadata scoring is not expected to find most of them, and they
# are reported on their own line, not in the headline recall over stranger offenders ("all").
_STRANGER_HARM = (Role.GROOMER, Role.SEXTORTION, Role.RING_MEMBER)
_RESTRICTED = ProtectiveAction.RESTRICT_MINOR_CONTACT.severity
_WEEK_MS = 7 * 24 * HOUR_MS
# Two-sided 95% Student t quantiles by degrees of freedom (1..10); 1.96 beyond.
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228)


@dataclass(frozen=True, slots=True)
class RunScore:
    """Everything `vigil sim score` reports about one run (one seed)."""

    seed: int
    roles: ScoreReport
    retention: Mapping[str, Mapping[str, Any]]  # incident type -> RetentionRow.to_json()
    engaged: Mapping[str, Any]  # recall over harmful accounts that engaged a minor, by role and style
    hours_from_contact: list[float]  # engaged harmful: first contact -> restriction
    hours_from_report: list[float]  # first report by a minor -> restriction
    report_to_review: Mapping[str, Any]  # per role: first urgent report by a minor -> review, -> restriction
    weekly_false_alarms: Mapping[str, list[float]]  # benign group -> share first restricted in week k
    prevalence: Mapping[str, Mapping[str, float | None]]
    prevented_requests: int
    extra: dict[str, Any]  # filled by model-specific sections (feature AUCs, probes)

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "roles": self.roles.to_json(),
            "retention": self.retention,
            "engaged": self.engaged,
            "hours_from_contact": _summary(self.hours_from_contact),
            "hours_from_report": _summary(self.hours_from_report),
            "report_to_review": self.report_to_review,
            "weekly_false_alarms": {
                k: [round(v, 5) for v in vs] for k, vs in self.weekly_false_alarms.items()
            },
            "prevalence": self.prevalence,
            "prevented_requests": self.prevented_requests,
            **self.extra,
        }


def _summary(values: Sequence[float]) -> dict[str, Any] | None:
    if not values:
        return None
    v = sorted(values)
    return {
        "n": len(v),
        "median": round(_quantile(v, 0.5), 2),
        "p90": round(_quantile(v, 0.9), 2),
        "max": round(v[-1], 2),
    }


def mean_ci(values: Sequence[float]) -> tuple[float, float, float] | None:
    """(mean, low, high) with a 95% t-interval over seeds, clipped to 0..1 (every value here is a share);
    (v, v, v) for a single value; None if empty."""
    if not values:
        return None
    n = len(values)
    mean = sum(values) / n
    if n == 1:
        return mean, mean, mean
    sd = (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5
    t = _T95[n - 2] if n - 1 <= len(_T95) else 1.96
    half = t * sd / n**0.5
    return mean, max(0.0, mean - half), min(1.0, mean + half)


def wilson(k: int, n: int) -> tuple[float, float]:
    """95% Wilson interval of a proportion (used when only one seed was run)."""
    if n == 0:
        return 0.0, 1.0
    z = 1.96
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _precision_at(recall: float, false_alarm: float, prevalence: float) -> float | None:
    hit = recall * prevalence
    total = hit + false_alarm * (1 - prevalence)
    return hit / total if total else None


def score_run(out_dir: Path) -> RunScore:
    """CLI `vigil sim score DIR`: the whole evaluation of one run. Raises StorageError if files are
    missing, ValidationError if malformed."""
    from vigil.safety.behavior.events import ReportFiled, event_from_record
    from vigil.sim.incidents import incident_from_record
    from vigil.sim.retention import classify_incidents, retention_table
    from vigil.sim.scenario import parse_scenario

    try:
        scenario = parse_scenario(json.loads((out_dir / "scenario.json").read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError) as exc:
        raise StorageError(f"cannot read {out_dir / 'scenario.json'}: {exc}") from exc
    rows = read_jsonl(out_dir / "ground_truth.jsonl")
    action_rows = read_jsonl(out_dir / "actions.jsonl")
    try:
        truth = [
            GroundTruth(UserId(r["u"]), Role(r["role"]), bool(r["modified_client"]), r["harm_start_ms"])
            for r in rows
        ]
        actions = [(UserId(a["u"]), ProtectiveAction(a["level"]), int(a["t"])) for a in action_rows]
        incidents = [incident_from_record(r) for r in _optional_jsonl(out_dir / "incidents.jsonl")]
        reports = [
            e
            for e in (event_from_record(r) for r in _optional_jsonl(out_dir / "reports.jsonl"))
            if isinstance(e, ReportFiled)
        ]
    except (KeyError, ValueError, TypeError) as exc:
        raise ValidationError(f"malformed simulation output in {out_dir}: {exc!r}") from exc
    roles = score_outcomes(truth, actions)
    role_of = {t.user: t.role for t in truth}
    restricted_at: dict[UserId, int] = {}
    for user, level, at in actions:
        if level.severity >= _RESTRICTED:
            restricted_at[user] = min(at, restricted_at.get(user, at))
    outcomes = classify_incidents(incidents, reports, restricted_at, scenario.detection, scenario.seed)
    retention = {k.value: row.to_json() for k, row in retention_table(outcomes).items()}

    # Recall over harmful accounts that engaged a minor, overall, by role and by groomer style.
    groups: dict[str, list[bool]] = {}
    from_contact: list[float] = []
    for r in rows:
        role = Role(r["role"])
        if not role.harmful_to_minors or r.get("engaged_ms") is None:
            continue
        user = UserId(r["u"])
        hit = user in restricted_at
        keys = ["all", role.value] if role in _STRANGER_HARM else [role.value]
        if r.get("style"):
            keys.append(f"{role.value}:{r['style']}")
        if r.get("replaces"):
            keys.append("replacement accounts")
        for key in keys:
            groups.setdefault(key, []).append(hit)
        if hit and r["harm_start_ms"] is not None:
            from_contact.append(max(0, restricted_at[user] - int(r["harm_start_ms"])) / HOUR_MS)
    engaged = {
        k: {"accounts": len(v), "restricted": sum(v), "recall": sum(v) / len(v)} for k, v in groups.items()
    }

    first_report: dict[UserId, int] = {}
    for rep in reports:
        if (
            role_of.get(rep.reported, Role.ADULT).harmful_to_minors
            and role_of.get(rep.reporter) is Role.MINOR
        ):
            first_report[rep.reported] = min(rep.at_ms, first_report.get(rep.reported, rep.at_ms))
    # Only accounts the report came before: one already restricted has nothing left to wait for.
    from_report = [
        (restricted_at[u] - at) / HOUR_MS
        for u, at in first_report.items()
        if u in restricted_at and restricted_at[u] >= at
    ]

    report_to_review = _report_to_review(
        reports,
        _optional_jsonl(out_dir / "reviews.jsonl"),
        role_of,
        restricted_at,
        scenario.start_ms
        + scenario.days * 24 * HOUR_MS
        - int(scenario.detection.minor_report_review_hours * HOUR_MS),
    )

    start, days = scenario.start_ms, scenario.days
    weeks = max(1, -(-days // 7))
    benign_groups = {
        "families": (Role.PARENT, Role.RELATIVE),
        "coaches": (Role.COACH,),
        "mentors": (Role.MENTOR,),
        "benign adults": _BENIGN_ADULTS,
    }
    weekly: dict[str, list[float]] = {}
    for name, members in benign_groups.items():
        accounts = [t.user for t in truth if t.role in members]
        per_week = [0] * weeks
        for u in accounts:
            if u in restricted_at:
                per_week[min(weeks - 1, max(0, (restricted_at[u] - start) // _WEEK_MS))] += 1
        weekly[name] = [c / len(accounts) if accounts else 0.0 for c in per_week]

    benign = [t.user for t in truth if t.role in _BENIGN_ADULTS]
    false_alarm = sum(1 for u in benign if u in restricted_at) / len(benign) if benign else 0.0
    recall_all = engaged.get("all", {}).get("recall", 0.0)
    prevalence = {
        f"{p:.2%}": {
            "precision_at_restriction": _precision_at(recall_all, false_alarm, p),
            "false_alarms_per_true_restriction": (
                None if not recall_all else round(false_alarm * (1 - p) / (recall_all * p), 2)
            ),
        }
        for p in PREVALENCES
    }
    prevented = sum(int(r.get("prevented_requests") or 0) for r in rows)
    return RunScore(
        scenario.seed,
        roles,
        retention,
        engaged,
        from_contact,
        from_report,
        report_to_review,
        weekly,
        prevalence,
        prevented,
        {},
    )


def _report_to_review(
    reports: Sequence[Any],
    reviews: Sequence[Mapping[str, Any]],
    role_of: Mapping[UserId, Role],
    restricted_at: Mapping[UserId, int],
    due_before_ms: int,
) -> dict[str, Any]:
    """Per role of the reported account: accounts a minor reported for grooming or sextortion, hours from
    the first such report to its first review (`reviews.jsonl`; fast mode's simulated reviewer) and to
    restriction by any channel (0 when the account was already restricted). `due` counts the accounts
    first reported before `due_before_ms` (the run's end less the review bound): each of them must have
    been reviewed."""
    from vigil.safety.behavior.events import ReportReason

    urgent = (ReportReason.GROOMING, ReportReason.SEXTORTION)
    first: dict[UserId, int] = {}
    for rep in reports:
        if rep.reason in urgent and role_of.get(rep.reporter) is Role.MINOR:
            first[rep.reported] = min(rep.at_ms, first.get(rep.reported, rep.at_ms))
    reviewed: dict[UserId, int] = {}
    for row in reviews:
        user = UserId(str(row["u"]))
        reviewed[user] = min(int(row["reviewed"]), reviewed.get(user, int(row["reviewed"])))
    out: dict[str, Any] = {}
    for role in sorted({role_of.get(u, Role.ADULT) for u in first}, key=lambda r: r.value):
        users = [u for u in first if role_of.get(u, Role.ADULT) is role]
        to_review = [(reviewed[u] - first[u]) / HOUR_MS for u in users if u in reviewed]
        to_action = [max(0, restricted_at[u] - first[u]) / HOUR_MS for u in users if u in restricted_at]
        out[role.value] = {
            "reported": len(users),
            "due": sum(1 for u in users if first[u] <= due_before_ms),
            "reviewed": len(to_review),
            "to_review": _summary(to_review),
            "restricted": len(to_action),
            "to_restriction": _summary(to_action),
        }
    return out


def _optional_jsonl(path: Path) -> list[dict[str, Any]]:
    return read_jsonl(path) if path.exists() else []


def aggregate(runs: Sequence[RunScore]) -> dict[str, Any]:
    """Means with 95% intervals over seeds (a Wilson interval over incidents when there is one seed)."""
    out: dict[str, Any] = {"seeds": [r.seed for r in runs], "retention": {}, "engaged": {}}
    types = list(runs[0].retention) if runs else []
    for kind in types:
        rows = [r.retention[kind] for r in runs]
        ratios = [float(x["retention"]) for x in rows if x["retention"] is not None]
        summed = {
            key: sum(int(x[key]) for x in rows)
            for key in (
                "happened",
                "reportable_plaintext",
                "reportable_vigil",
                "detected_without_content",
                "prevented",
            )
        }
        ci = mean_ci(ratios)
        if len(runs) == 1 and summed["reportable_plaintext"]:
            lo, hi = wilson(summed["reportable_vigil"], summed["reportable_plaintext"])
            ci = (ratios[0], lo, hi) if ratios else None
        out["retention"][kind] = {
            **summed,
            "retention": None
            if ci is None
            else {"mean": round(ci[0], 4), "low": round(ci[1], 4), "high": round(ci[2], 4)},
        }
    keys = sorted({k for r in runs for k in r.engaged})
    for key in keys:
        recalls = [float(r.engaged[key]["recall"]) for r in runs if key in r.engaged]
        ci = mean_ci(recalls)
        assert ci is not None
        out["engaged"][key] = {
            "accounts": sum(int(r.engaged[key]["accounts"]) for r in runs if key in r.engaged),
            "recall": {"mean": round(ci[0], 4), "low": round(ci[1], 4), "high": round(ci[2], 4)},
        }
    out["hours_from_contact"] = _summary([h for r in runs for h in r.hours_from_contact])
    out["hours_from_report"] = _summary([h for r in runs for h in r.hours_from_report])
    per_role: dict[str, dict[str, int]] = {}
    for r in runs:
        for role, row in r.report_to_review.items():
            counted = per_role.setdefault(role, {"reported": 0, "due": 0, "reviewed": 0, "restricted": 0})
            for key in counted:
                counted[key] += int(row.get(key, 0))
    out["report_to_review"] = {
        role: {
            **counts,
            "max_hours_to_review": max(
                (
                    float(r.report_to_review[role]["to_review"]["max"])
                    for r in runs
                    if role in r.report_to_review and r.report_to_review[role]["to_review"]
                ),
                default=None,
            ),
            "median_hours_to_restriction": _median_of(
                [
                    float(r.report_to_review[role]["to_restriction"]["median"])
                    for r in runs
                    if role in r.report_to_review and r.report_to_review[role]["to_restriction"]
                ]
            ),
        }
        for role, counts in per_role.items()
    }
    weeks: dict[str, list[float]] = {}
    for r in runs:
        for name, values in r.weekly_false_alarms.items():
            acc = weeks.setdefault(name, [0.0] * len(values))
            for i, v in enumerate(values[: len(acc)]):
                acc[i] += v / len(runs)
    out["weekly_false_alarms"] = {k: [round(v, 5) for v in vs] for k, vs in weeks.items()}
    out["prevalence"] = {
        p: {
            "precision_at_restriction": _mean_or_none(
                [r.prevalence[p]["precision_at_restriction"] for r in runs]
            )
        }
        for p in (runs[0].prevalence if runs else {})
    }
    return out


def _median_of(values: Sequence[float]) -> float | None:
    return round(_quantile(sorted(values), 0.5), 2) if values else None


def _mean_or_none(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(sum(present) / len(present), 5) if present else None


def score_runs(dirs: Sequence[Path]) -> tuple[list[RunScore], dict[str, Any]]:
    """Score each run directory (one per seed) and aggregate. Raises as `score_run`."""
    if not dirs:
        raise ValidationError("give at least one run directory")
    runs = [score_run(d) for d in dirs]
    return runs, aggregate(runs)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1%}"


def format_evaluation(runs: Sequence[RunScore], agg: Mapping[str, Any]) -> str:
    """The terminal report: per-role table (first run), retention table, engaged recall, timings."""
    lines = [format_report(runs[0].roles) if len(runs) == 1 else f"{len(runs)} runs, seeds {agg['seeds']}"]
    lines += [
        "",
        "what survives encryption, per incident type (summed over runs; retention = Vigil / plaintext, 95% CI"
        + (" over seeds)" if len(runs) > 1 else ", Wilson over incidents)"),
        f"{'incident type':<20} {'happened':>8} {'plaintext':>9} {'vigil':>7} {'no-content':>10} "
        f"{'prevented':>9}  retention",
    ]
    for kind, row in agg["retention"].items():
        r = row["retention"]
        ret = "-" if r is None else f"{r['mean']:.0%} [{r['low']:.0%}, {r['high']:.0%}]"
        lines.append(
            f"{kind:<20} {row['happened']:>8} {row['reportable_plaintext']:>9} {row['reportable_vigil']:>7} "
            f"{row['detected_without_content']:>10} {row['prevented']:>9}  {ret}"
        )
    lines += ["", "restricted, over harmful accounts that engaged a minor (mean [95% CI])"]
    for key, row in agg["engaged"].items():
        r = row["recall"]
        lines.append(
            f"  {key:<28} {row['accounts']:>5} accounts  {r['mean']:.1%} [{r['low']:.1%}, {r['high']:.1%}]"
        )
    for name, key in (
        ("first contact", "hours_from_contact"),
        ("first report by a minor", "hours_from_report"),
    ):
        v = agg[key]
        text = "none" if v is None else f"median {v['median']:.1f} h, p90 {v['p90']:.1f} h (n={v['n']})"
        lines.append(f"hours from {name} to restriction: {text}")
    lines.append(
        "a minor's grooming or sextortion report, per role of the reported account "
        "(first report -> review / -> restriction):"
    )
    for role, row in agg["report_to_review"].items():
        worst = row["max_hours_to_review"]
        med = row["median_hours_to_restriction"]
        lines.append(
            f"  {role:<12} {row['reported']:>4} reported, {row['reviewed']:>4} of {row['due']} due reviewed"
            + ("" if worst is None else f" (at most {worst:.1f} h after the report)")
            + f", {row['restricted']:>4} restricted"
            + ("" if med is None else f" (median {med:.1f} h)")
        )
    lines.append(
        "false alarms at restriction, share first restricted in each week (week 1 includes warm-up):"
    )
    for name, values in agg["weekly_false_alarms"].items():
        lines.append(f"  {name:<14} " + "  ".join(f"w{i + 1} {v:.2%}" for i, v in enumerate(values)))
    lines.append("precision at restriction if this share of adults were harmful:")
    for p, row in agg["prevalence"].items():
        lines.append(f"  {p:>7}: {_pct(row['precision_at_restriction'])}")
    for run in runs:
        for section, text in run.extra.get("_text", {}).items():
            lines += ["", f"{section} (seed {run.seed})", text]
    return "\n".join(lines)

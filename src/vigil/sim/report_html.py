"""`vigil sim score --html`: one self-contained page (inline CSS and SVG, no scripts, no network).

Charts: retention per incident type with its interval, the distribution of hours from first contact to
restriction, and false alarms at restriction per week for families, coaches and all benign adults. Tables:
the retention table, recall over accounts that engaged a minor, precision at realistic prevalence, and,
when the runs saved feature snapshots, the per-feature AUC table and the robustness probes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from vigil.sim.score import RunScore

__all__ = ["render_html"]

_W, _H = 640, 240
_PAD_L, _PAD_B, _PAD_T = 150, 30, 10
_COLOURS = ("#2b6cb0", "#c05621", "#2f855a", "#6b46c1")


def _bar_chart(rows: Sequence[tuple[str, float, float, float]], title: str) -> str:
    """Horizontal bars in 0..1 with interval whiskers: (label, value, low, high)."""
    h = _PAD_T + 26 * len(rows) + _PAD_B
    width = _W - _PAD_L - 20
    parts = [f'<svg role="img" aria-label="{escape(title)}" width="{_W}" height="{h}">']
    for k in range(0, 11, 2):
        x = _PAD_L + width * k / 10
        parts.append(f'<line x1="{x:.1f}" y1="{_PAD_T}" x2="{x:.1f}" y2="{h - _PAD_B}" stroke="#ddd"/>')
        parts.append(f'<text x="{x:.1f}" y="{h - 12}" font-size="11" text-anchor="middle">{k * 10}%</text>')
    for i, (label, value, low, high) in enumerate(rows):
        y = _PAD_T + 26 * i
        parts.append(
            f'<text x="{_PAD_L - 6}" y="{y + 15}" font-size="12" text-anchor="end">{escape(label)}</text>'
        )
        parts.append(
            f'<rect x="{_PAD_L}" y="{y + 4}" width="{width * value:.1f}" height="16" fill="{_COLOURS[0]}"/>'
        )
        parts.append(
            f'<line x1="{_PAD_L + width * low:.1f}" y1="{y + 12}" x2="{_PAD_L + width * high:.1f}" '
            f'y2="{y + 12}" stroke="#000" stroke-width="2"/>'
        )
        parts.append(
            f'<text x="{_PAD_L + width * value + 4:.1f}" y="{y + 16}" font-size="11">{value:.0%}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _histogram(values: Sequence[float], title: str, bins: Sequence[float]) -> str:
    counts = [0] * (len(bins) - 1)
    for v in values:
        for i in range(len(bins) - 1):
            if bins[i] <= v < bins[i + 1] or (i == len(bins) - 2 and v >= bins[-1]):
                counts[i] += 1
                break
    top = max(counts) or 1
    width = (_W - 60) / len(counts)
    parts = [f'<svg role="img" aria-label="{escape(title)}" width="{_W}" height="{_H}">']
    for i, c in enumerate(counts):
        bh = (_H - _PAD_B - _PAD_T) * c / top
        x = 40 + i * width
        parts.append(
            f'<rect x="{x + 2:.1f}" y="{_H - _PAD_B - bh:.1f}" width="{width - 4:.1f}" height="{bh:.1f}" '
            f'fill="{_COLOURS[1]}"/>'
        )
        parts.append(
            f'<text x="{x + width / 2:.1f}" y="{_H - _PAD_B - bh - 3:.1f}" font-size="11" '
            f'text-anchor="middle">{c}</text>'
        )
        label = f"{bins[i]:g}-{bins[i + 1]:g}" if i < len(counts) - 1 else f"{bins[i]:g}+"
        parts.append(
            f'<text x="{x + width / 2:.1f}" y="{_H - 12}" font-size="11" '
            f'text-anchor="middle">{label} h</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _weekly_chart(series: Mapping[str, Sequence[float]], title: str) -> str:
    weeks = max((len(v) for v in series.values()), default=1)
    top = max((x for v in series.values() for x in v), default=0.0) or 0.01
    group_w = (_W - 80) / weeks
    bar_w = group_w / (len(series) + 1)
    parts = [f'<svg role="img" aria-label="{escape(title)}" width="{_W}" height="{_H}">']
    parts.append(f'<text x="4" y="{_PAD_T + 10}" font-size="11">{top:.2%}</text>')
    for j, (name, values) in enumerate(series.items()):
        colour = _COLOURS[j % len(_COLOURS)]
        for i, v in enumerate(values):
            bh = (_H - _PAD_B - _PAD_T - 20) * v / top
            x = 60 + i * group_w + j * bar_w
            parts.append(
                f'<rect x="{x:.1f}" y="{_H - _PAD_B - bh:.1f}" width="{bar_w - 2:.1f}" height="{bh:.1f}" '
                f'fill="{colour}"><title>{escape(name)} week {i + 1}: {v:.2%}</title></rect>'
            )
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{_H - _PAD_B - bh - 3:.1f}" font-size="10" '
                f'text-anchor="middle">{v:.1%}</text>'
            )
        parts.append(
            f'<rect x="{_W - 150}" y="{_PAD_T + 16 * j}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{_W - 136}" y="{_PAD_T + 9 + 16 * j}" font-size="11">{escape(name)}</text>'
        )
    for i in range(weeks):
        x = 60 + i * group_w + group_w / 2 - bar_w / 2
        parts.append(
            f'<text x="{x:.1f}" y="{_H - 12}" font-size="11" text-anchor="middle">week {i + 1}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = ["<table><thead><tr>", *(f"<th>{escape(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _ci(value: Mapping[str, float] | None) -> str:
    if value is None:
        return "-"
    return f"{value['mean']:.1%} [{value['low']:.1%}, {value['high']:.1%}]"


def render_html(runs: Sequence[RunScore], agg: Mapping[str, Any]) -> str:
    retention = agg["retention"]
    bars = [
        (kind, r["retention"]["mean"], r["retention"]["low"], r["retention"]["high"])
        for kind, r in retention.items()
        if r["retention"] is not None
    ]
    ret_rows = [
        (
            kind,
            r["happened"],
            r["reportable_plaintext"],
            r["reportable_vigil"],
            r["detected_without_content"],
            r["prevented"],
            _ci(r["retention"]),
        )
        for kind, r in retention.items()
    ]
    engaged_rows = [(k, v["accounts"], _ci(v["recall"])) for k, v in agg["engaged"].items()]
    hours = [h for r in runs for h in r.hours_from_contact]
    prevalence_rows = [
        (p, "-" if v["precision_at_restriction"] is None else f"{v['precision_at_restriction']:.2%}")
        for p, v in agg["prevalence"].items()
    ]
    sections = [
        "<h2>Retention per incident type</h2>",
        "<p>Share of what a plaintext-reading server could report that Vigil can still report with content "
        "(on-device hash matches on unmodified clients, franked user reports). Whiskers: 95% interval.</p>",
        _bar_chart(bars, "retention per incident type"),
        _table(
            (
                "incident type",
                "happened",
                "reportable with plaintext",
                "reportable with Vigil",
                "detected without content",
                "prevented",
                "retention",
            ),
            ret_rows,
        ),
        "<h2>Harmful accounts that engaged a minor: restricted</h2>",
        _table(("group", "accounts", "restricted (mean [95% CI])"), engaged_rows),
        "<h2>Time to action</h2>",
        "<p>Hours from the first contact with a minor to restriction.</p>",
        _histogram(hours, "hours from first contact to restriction", (0, 6, 12, 24, 48, 96, 168)),
        "<p>Hours from the first report by a minor to restriction.</p>",
        _histogram(
            [h for r in runs for h in r.hours_from_report],
            "hours from first report to restriction",
            (0, 6, 12, 24, 48),
        ),
        "<p>A minor's grooming or sextortion report, per role of the reported account: how many were "
        "reviewed, the longest wait from the first report to review, and how many accounts were restricted "
        "(median hours from the first report, by any channel).</p>",
        _table(
            (
                "reported role",
                "accounts reported",
                "reviewed",
                "longest wait (h)",
                "restricted",
                "median (h)",
            ),
            [
                (
                    role,
                    row["reported"],
                    f"{row['reviewed']} of {row.get('due', '-')} due",
                    "-" if row["max_hours_to_review"] is None else f"{row['max_hours_to_review']:.1f}",
                    row["restricted"],
                    "-"
                    if row["median_hours_to_restriction"] is None
                    else f"{row['median_hours_to_restriction']:.1f}",
                )
                for role, row in agg.get("report_to_review", {}).items()
            ],
        ),
        "<h2>False alarms at restriction per week</h2>",
        "<p>Share of each benign group first restricted in that week (week 1 includes warm-up).</p>",
        _weekly_chart(agg["weekly_false_alarms"], "false alarms per week"),
        "<h2>Precision at realistic prevalence</h2>",
        _table(("harmful share of adults", "precision at restriction"), prevalence_rows),
    ]
    for run in runs:
        auc = run.extra.get("feature_auc")
        if auc:
            rows = sorted(auc["auc"].items(), key=lambda kv: -(kv[1] or 0.0))
            sections.append(f"<h2>Per-feature AUC, model {escape(auc['model'])}, seed {run.seed}</h2>")
            hard = auc.get("auc_vs_mentors_and_coaches", {})
            sections.append(
                _table(
                    ("feature", "AUC", "AUC vs mentors and coaches"),
                    [
                        (
                            k,
                            "-" if v is None else f"{v:.3f}",
                            "-" if hard.get(k) is None else f"{hard[k]:.3f}",
                        )
                        for k, v in rows
                    ],
                )
            )
        probes = run.extra.get("probes")
        if probes:
            sections.append(
                f"<h2>Probes, seed {run.seed}: unprobed recall {probes['unprobed_recall']:.1%}</h2>"
            )
            sections.append(
                _table(
                    ("account-controlled feature at the benign median", "recall", "of unprobed"),
                    [
                        (k, f"{v['recall']:.1%}", "-" if v["relative"] is None else f"{v['relative']:.0%}")
                        for k, v in probes["features"].items()
                    ],
                )
            )
    style = (
        "body{font-family:system-ui,sans-serif;max-width:900px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
        "text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}"
    )
    seeds = ", ".join(str(s) for s in agg["seeds"])
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Vigil simulation report</title><style>{style}</style></head><body>"
        f"<h1>Vigil simulation report</h1><p>Seeds: {escape(seeds)}. Method and assumptions: "
        "docs/evaluation.md.</p>" + "".join(sections) + "</body></html>\n"
    )

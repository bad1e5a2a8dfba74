"""The metrics page (leads): per-queue times, decisions per reviewer, queue depth, and a CSV export."""

from __future__ import annotations

import csv
import io

from fastapi import APIRouter, Request, Response

from vigil.console.deps import Ctx, Lead, Me
from vigil.console.pages import render
from vigil.server.services.review_metrics import review_metrics

__all__ = ["router"]

router = APIRouter()


@router.get("/metrics")
async def metrics_page(request: Request, ctx: Ctx, me: Me, _lead: Lead) -> Response:
    metrics = await review_metrics(ctx)
    peak = max([1, *(n for series in metrics.depth.values() for n in series)])
    most = max([1, *(n for _name, n in metrics.decisions_by_reviewer)])
    return render(request, "metrics.html", me=me, m=metrics, peak=peak, most=most)


@router.get("/metrics.csv")
async def metrics_csv(ctx: Ctx, _me: Me, _lead: Lead) -> Response:
    metrics = await review_metrics(ctx)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["section", "key", "opened", "decided", "median_first_action_s", "median_decision_s", "overturn_rate"]
    )
    for q in metrics.queues:
        writer.writerow(
            [
                "queue",
                q.queue.value,
                q.opened,
                q.decided,
                "" if q.median_first_action_ms is None else q.median_first_action_ms // 1000,
                "" if q.median_decision_ms is None else q.median_decision_ms // 1000,
            ]
        )
    for name, count in metrics.decisions_by_reviewer:
        writer.writerow(["reviewer_decisions", name, "", count, "", ""])
    for queue, series in metrics.depth.items():
        for t, n in zip(metrics.depth_times_ms, series, strict=True):
            writer.writerow(["depth", f"{queue.value}@{t}", n, "", "", ""])
    rate = metrics.overturn_rate
    writer.writerow(
        [
            "appeal_overturns",
            "appeals",
            metrics.appeals_overturned,
            metrics.appeals_decided,
            "",
            "",
            "" if rate is None else f"{rate:.4f}",
        ]
    )
    bound = metrics.minors_bound
    share = bound.share_within
    # opened = every covered report with a known outcome, decided = those in front of a reviewer in time
    writer.writerow(
        [
            "minors_within_24h",
            f"late={bound.late};overdue={bound.overdue};waiting={bound.waiting}",
            bound.within + bound.late + bound.overdue,
            bound.within,
            "",
            "",
            "" if share is None else f"{share:.4f}",
        ]
    )
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="review-metrics.csv"'},
    )

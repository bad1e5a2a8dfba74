"""Routing rules: which queue a report or lead lands in, and SLA breaches."""

from __future__ import annotations

import pytest

from vigil.protocol.reports import ReportReason
from vigil.protocol.wire import AgeBand
from vigil.safety.routing import CaseSource, QueueName, RoutingInput, more_urgent_queue, route, sla_breached


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (RoutingInput(CaseSource.IMAGE_MATCH, ReportReason.CSAM), QueueName.IMAGE_MATCHES),
        (RoutingInput(CaseSource.MESSAGE_REPORT, ReportReason.CSAM, AgeBand.ADULT), QueueName.IMAGE_MATCHES),
        (
            RoutingInput(CaseSource.ACCOUNT_REPORT, ReportReason.CSAM, AgeBand.TEEN_13_15),
            QueueName.IMAGE_MATCHES,
        ),
        (RoutingInput(CaseSource.MESSAGE_REPORT, ReportReason.SPAM, AgeBand.UNDER_13), QueueName.MINORS),
        (
            RoutingInput(CaseSource.ACCOUNT_REPORT, ReportReason.GROOMING, AgeBand.TEEN_16_17),
            QueueName.MINORS,
        ),
        (
            RoutingInput(CaseSource.MESSAGE_REPORT, ReportReason.SEXTORTION, AgeBand.ADULT, has_image=True),
            QueueName.MINORS,
        ),
        (RoutingInput(CaseSource.MESSAGE_REPORT, ReportReason.SEXTORTION, AgeBand.ADULT), QueueName.GENERAL),
        (RoutingInput(CaseSource.RISK_MODEL, ReportReason.GROOMING), QueueName.RISK_LEADS),
        (RoutingInput(CaseSource.MESSAGE_REPORT, ReportReason.GROOMING, AgeBand.ADULT), QueueName.GENERAL),
        (
            RoutingInput(CaseSource.MESSAGE_REPORT, ReportReason.HARASSMENT, AgeBand.ADULT, True),
            QueueName.GENERAL,
        ),
    ],
)
def test_route(given: RoutingInput, expected: QueueName) -> None:
    assert route(given) is expected


def test_joining_report_only_moves_a_case_to_a_more_urgent_queue() -> None:
    assert more_urgent_queue(QueueName.GENERAL, QueueName.MINORS) is QueueName.MINORS
    assert more_urgent_queue(QueueName.IMAGE_MATCHES, QueueName.MINORS) is QueueName.IMAGE_MATCHES
    assert more_urgent_queue(QueueName.RISK_LEADS, QueueName.RISK_LEADS) is QueueName.RISK_LEADS


def test_sla_breach_is_strictly_after_the_limit() -> None:
    sla = QueueName.IMAGE_MATCHES.sla_ms
    assert not sla_breached(QueueName.IMAGE_MATCHES, 1000, 1000 + sla)
    assert sla_breached(QueueName.IMAGE_MATCHES, 1000, 1001 + sla)
    assert QueueName.IMAGE_MATCHES.sla_ms < QueueName.MINORS.sla_ms < QueueName.GENERAL.sla_ms


def test_every_queue_a_minors_grooming_or_sextortion_report_reaches_meets_the_24_hour_bound() -> None:
    from vigil.safety.routing import MINOR_REPORT_BOUND_MS, under_minor_report_bound

    assert MINOR_REPORT_BOUND_MS == 24 * 3_600_000
    for band in (AgeBand.UNDER_13, AgeBand.TEEN_13_15, AgeBand.TEEN_16_17):
        for reason in (ReportReason.GROOMING, ReportReason.SEXTORTION):
            assert under_minor_report_bound(reason, band)
            for source in (CaseSource.MESSAGE_REPORT, CaseSource.ACCOUNT_REPORT):
                for has_image in (False, True):
                    queue = route(RoutingInput(source, reason, band, has_image))
                    # whatever queue the account's case was in before, it only moves to a more urgent one
                    for earlier in QueueName:
                        if earlier is QueueName.APPEALS:
                            continue  # reports never join an appeal's case
                        landed = more_urgent_queue(earlier, queue)
                        assert landed.sla_ms <= MINOR_REPORT_BOUND_MS, (landed, reason, band)
    assert not under_minor_report_bound(ReportReason.GROOMING, AgeBand.ADULT)
    assert not under_minor_report_bound(ReportReason.SPAM, AgeBand.TEEN_13_15)


def test_reviewed_within_the_bound_counts_from_the_report_and_breaches_once_it_runs_out() -> None:
    from vigil.safety.routing import MINOR_REPORT_BOUND_MS, reviewed_within_bound

    t, bound = 1_000_000, MINOR_REPORT_BOUND_MS
    assert reviewed_within_bound(t, t + bound, t + 2 * bound) is True
    assert reviewed_within_bound(t, t + bound + 1, t + 2 * bound) is False  # reviewed, but late
    assert reviewed_within_bound(t, t - 5, t + 2 * bound) is True  # joined a case already being worked
    assert reviewed_within_bound(t, None, t + bound) is None  # still within the bound
    assert reviewed_within_bound(t, None, t + bound + 1) is False  # overdue: a visible breach

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

"""Strike escalation at configured thresholds."""

from __future__ import annotations

import pytest

from vigil.errors import ValidationError
from vigil.safety.strikes import Sanction, escalate, parse_thresholds

THRESHOLDS = parse_thresholds("restrict=3,suspend=5")


@pytest.mark.parametrize(
    ("chosen", "strikes", "expected"),
    [
        (Sanction.WARN, 1, Sanction.WARN),
        (Sanction.WARN, 2, Sanction.WARN),
        (Sanction.WARN, 3, Sanction.RESTRICT),
        (Sanction.WARN, 4, Sanction.RESTRICT),
        (Sanction.WARN, 5, Sanction.SUSPEND),
        (Sanction.RESTRICT, 1, Sanction.RESTRICT),
        (Sanction.SUSPEND, 1, Sanction.SUSPEND),  # never softened
        (Sanction.SUSPEND, 3, Sanction.SUSPEND),
        (Sanction.RESTRICT, 9, Sanction.SUSPEND),
    ],
)
def test_escalate(chosen: Sanction, strikes: int, expected: Sanction) -> None:
    assert escalate(chosen, strikes, THRESHOLDS) is expected


def test_no_thresholds_never_escalate() -> None:
    assert escalate(Sanction.WARN, 100, parse_thresholds("")) is Sanction.WARN


def test_parse() -> None:
    assert parse_thresholds(" suspend=2 ") == {Sanction.SUSPEND: 2}
    for bad in ("restrict=0", "ban=3", "restrict=x", "restrict=5,suspend=3", "restrict"):
        with pytest.raises(ValidationError):
            parse_thresholds(bad)

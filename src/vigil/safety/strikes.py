"""Strikes: each decision against an account under one policy is a strike; at configured thresholds the
action a reviewer chose escalates (a third harassment strike suspends even when the reviewer chose a
warning). Pure: the server counts strikes, this decides.

Thresholds are written `restrict=3,suspend=5` (`VIGIL_STRIKE_THRESHOLDS`): from the 3rd strike under one
policy the action is at least a restriction, from the 5th a suspension.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from vigil.errors import ValidationError

__all__ = ["Sanction", "escalate", "parse_thresholds"]


class Sanction(enum.StrEnum):
    """Enforcement actions, mildest first."""

    WARN = "warn"
    RESTRICT = "restrict"
    SUSPEND = "suspend"

    @property
    def rank(self) -> int:
        return list(Sanction).index(self)


def parse_thresholds(text: str) -> dict[Sanction, int]:
    """Raises ValidationError for an unknown sanction, a non-positive count, or thresholds that do not
    grow with severity."""
    thresholds: dict[Sanction, int] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, count = part.partition("=")
        if name.strip() not in set(Sanction) or not count.strip().isdigit() or int(count) < 1:
            raise ValidationError(f"strike threshold {part[:40]!r}: write e.g. restrict=3,suspend=5")
        thresholds[Sanction(name.strip())] = int(count)
    ordered = [thresholds[s] for s in Sanction if s in thresholds]
    if ordered != sorted(ordered):
        raise ValidationError("strike thresholds must grow with the severity of the sanction")
    return thresholds


def escalate(chosen: Sanction, strikes: int, thresholds: Mapping[Sanction, int]) -> Sanction:
    """The sanction to apply for a decision that is the account's `strikes`-th strike under one policy:
    the chosen one, or the most severe whose threshold the strikes reached, whichever is more severe."""
    reached = [s for s, at in thresholds.items() if strikes >= at]
    return max([chosen, *reached], key=lambda s: s.rank)

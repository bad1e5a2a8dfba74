"""From a risk assessment to protective actions: a pure decision function over thresholds.

The actions form a ladder; a higher rung implies the lower ones (an account with an open case is also
restricted, and the minors it reached are also shown a safety notice). Only declared adults who reached
minors in the window are acted on: the layer exists to protect minors from adults, and a notice needs
someone to go to.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from vigil.errors import ValidationError
from vigil.protocol.ids import UserId
from vigil.safety.behavior.assessment import RiskAssessment

__all__ = ["DEFAULT_THRESHOLDS", "Decision", "ProtectiveAction", "Thresholds", "decide"]


class ProtectiveAction(enum.StrEnum):
    NONE = "none"
    SAFETY_NOTICE = "safety_notice"  # the minors it contacted see a notice with block/report
    RESTRICT_MINOR_CONTACT = "restrict_minor_contact"  # no new contact with minors; existing chats notified
    OPEN_CASE = "open_case"  # a case in the review console with the reasons and the metadata timeline

    @property
    def severity(self) -> int:
        match self:
            case ProtectiveAction.NONE:
                return 0
            case ProtectiveAction.SAFETY_NOTICE:
                return 1
            case ProtectiveAction.RESTRICT_MINOR_CONTACT:
                return 2
            case ProtectiveAction.OPEN_CASE:
                return 3


_LADDER = (
    ProtectiveAction.SAFETY_NOTICE,
    ProtectiveAction.RESTRICT_MINOR_CONTACT,
    ProtectiveAction.OPEN_CASE,
)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Risk scores (0..1) at which each rung starts. Must be non-decreasing up the ladder."""

    safety_notice: float
    restrict_minor_contact: float
    open_case: float

    def __post_init__(self) -> None:
        values = (self.safety_notice, self.restrict_minor_contact, self.open_case)
        if not all(0.0 <= v <= 1.0 for v in values):
            raise ValidationError(f"thresholds must be within 0..1, got {values}")
        if not values[0] <= values[1] <= values[2]:
            raise ValidationError(
                f"thresholds must be non-decreasing (notice <= restrict <= case), got {values}"
            )

    def level_for(self, score: float) -> ProtectiveAction:
        if score >= self.open_case:
            return ProtectiveAction.OPEN_CASE
        if score >= self.restrict_minor_contact:
            return ProtectiveAction.RESTRICT_MINOR_CONTACT
        if score >= self.safety_notice:
            return ProtectiveAction.SAFETY_NOTICE
        return ProtectiveAction.NONE


# Placeholder until a model calibrates its own (the shipped model carries calibrated thresholds).
DEFAULT_THRESHOLDS = Thresholds(safety_notice=0.5, restrict_minor_contact=0.8, open_case=0.95)


@dataclass(frozen=True, slots=True)
class Decision:
    user: UserId
    level: ProtectiveAction
    actions: frozenset[ProtectiveAction]
    notify: tuple[UserId, ...]  # minors to show a safety notice
    assessment: RiskAssessment


def decide(
    assessment: RiskAssessment,
    *,
    is_adult: bool,
    minors_contacted: Sequence[UserId],
    thresholds: Thresholds,
) -> Decision:
    """The actions for one assessed account. Pure; raises nothing."""
    level = thresholds.level_for(assessment.score)
    if not is_adult or not minors_contacted:
        level = ProtectiveAction.NONE
    actions = frozenset(a for a in _LADDER if a.severity <= level.severity)
    notify = tuple(minors_contacted) if level is not ProtectiveAction.NONE else ()
    return Decision(assessment.user, level, actions, notify, assessment)

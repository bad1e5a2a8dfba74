"""What the risk model says about one account: a score with the reasons a reviewer can check.

Its own module because both the model (which produces assessments) and the policy (which acts on them)
need the type, and neither should import the other.
"""

from __future__ import annotations

from dataclasses import dataclass

from vigil.protocol.ids import UserId

__all__ = ["Reason", "RiskAssessment"]


@dataclass(frozen=True, slots=True)
class Reason:
    feature: str
    value: float
    contribution: float  # log-odds above a typical benign adult
    text: str


@dataclass(frozen=True, slots=True)
class RiskAssessment:
    user: UserId
    at_ms: int
    score: float  # 0..1
    reasons: tuple[Reason, ...]
    model_version: str

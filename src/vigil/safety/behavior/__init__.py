"""Behavioural risk from metadata: events -> features -> risk score with reasons -> protective actions.

Runs server-side on what the server legitimately sees (DESIGN.md §1); never on content.
"""

from vigil.safety.behavior.assessment import Reason, RiskAssessment
from vigil.safety.behavior.events import AccountFacts, EventKind, EventSink, MetadataEvent, UserId
from vigil.safety.behavior.features import FEATURE_NAMES, FeatureExtractor, FeatureVector
from vigil.safety.behavior.model import RiskModel, load_default_model
from vigil.safety.behavior.policy import Decision, ProtectiveAction, Thresholds, decide

__all__ = [
    "FEATURE_NAMES",
    "AccountFacts",
    "Decision",
    "EventKind",
    "EventSink",
    "FeatureExtractor",
    "FeatureVector",
    "MetadataEvent",
    "ProtectiveAction",
    "Reason",
    "RiskAssessment",
    "RiskModel",
    "Thresholds",
    "UserId",
    "decide",
    "load_default_model",
]

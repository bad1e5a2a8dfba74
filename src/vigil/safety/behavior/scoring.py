"""One scoring pass: features -> risk -> protective decisions. Pure and synchronous.

The server's risk service (`vigil.server.services.risk`) and the simulator's fast mode
(`vigil.sim.run`) both call `assess_and_decide`, so the two paths cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from vigil.safety.behavior.events import UserId
from vigil.safety.behavior.features import FeatureExtractor
from vigil.safety.behavior.model import RiskModel
from vigil.safety.behavior.policy import Decision, Thresholds, decide

__all__ = ["assess_and_decide"]


def assess_and_decide(
    extractor: FeatureExtractor,
    model: RiskModel,
    thresholds: Thresholds,
    users: Iterable[UserId],
    now_ms: int,
) -> list[Decision]:
    """Decisions for the adults among `users` whose score reaches the lowest rung; each carries its
    assessment (score and reasons in words). Minors are never scored: the layer protects them. Raises
    nothing for an empty list."""
    adults = [u for u in users if not extractor.is_minor(u)]
    if not adults:
        return []
    x = extractor.feature_matrix(adults, now_ms)
    scores = model.score_matrix(x)
    decisions = []
    for i in np.flatnonzero(scores >= thresholds.safety_notice).tolist():
        user = adults[i]
        [assessment] = model.assess_matrix([user], now_ms, x[i : i + 1])
        decisions.append(
            decide(
                assessment,
                is_adult=True,
                minors_contacted=extractor.minors_contacted(user, now_ms),
                thresholds=thresholds,
            )
        )
    return decisions

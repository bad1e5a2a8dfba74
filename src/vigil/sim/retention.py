"""What survives encryption: the same incidents scored by a plaintext-reading server and by Vigil's channels.

Per incident (pure, deterministic given the seed):

* **plaintext baseline** — a server that reads every message: a hash-list match for a known image
  (`detection.hash_recall`), an image classifier for other images and a text classifier for text
  (`*_classifier_recall`, found after `*_classifier_delay_hours`), or a user report that covers it.
* **Vigil, content-backed** — what can still go to NCMEC with the content: an on-device hash match on the
  *sending* client when that client is unmodified (and, with `detection.receiver_side_matching`, on the
  recipient's), with the same hash recall; or a franked user report whose context covers the incident
  (the reporter reveals the reported message and the `report_context_days` before it).
* **detected without content** — the offender was restricted or put in front of a reviewer (risk model or
  a reviewed report) but no content backs this incident.
* **prevented** — the incident never happened: the offender was restricted before it could.

One uniform draw per incident decides the hash/classifier channels for both sides, so the comparison is
paired: an image the on-device match misses is also missed by the server's match.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from vigil.safety.behavior.events import ReportFiled, UserId
from vigil.safety.behavior.features import HOUR_MS
from vigil.sim.incidents import Incident, IncidentType
from vigil.sim.scenario import DetectionSettings

__all__ = ["IncidentOutcome", "RetentionRow", "classify_incidents", "retention_table"]

_DAY_MS = 24 * HOUR_MS


@dataclass(frozen=True, slots=True)
class IncidentOutcome:
    incident: Incident
    plaintext_at: int | None  # when a plaintext-reading server could report it (None: never)
    vigil_at: int | None  # when Vigil could report it with content
    acted_at: int | None  # when the offender was restricted or reviewed (any channel)

    @property
    def without_content(self) -> bool:
        return self.vigil_at is None and self.acted_at is not None


@dataclass(frozen=True, slots=True)
class RetentionRow:
    kind: IncidentType
    happened: int
    plaintext: int
    vigil: int
    without_content: int
    prevented: int

    @property
    def retention(self) -> float | None:
        return self.vigil / self.plaintext if self.plaintext else None

    def to_json(self) -> dict[str, object]:
        r = self.retention
        return {
            "happened": self.happened,
            "reportable_plaintext": self.plaintext,
            "reportable_vigil": self.vigil,
            "detected_without_content": self.without_content,
            "prevented": self.prevented,
            "retention": None if r is None else round(r, 4),
        }


def _report_covering(
    reports: Mapping[tuple[UserId, UserId], Sequence[int]], inc: Incident, context_ms: int
) -> int | None:
    """The first report by the victim about the offender filed at or after the incident, within the
    report's context window."""
    if inc.victim is None:
        return None
    times = reports.get((inc.victim, inc.offender))
    if not times:
        return None
    i = bisect.bisect_left(times, inc.at_ms)
    if i < len(times) and times[i] - inc.at_ms <= context_ms:
        return times[i]
    return None


def classify_incidents(
    incidents: Iterable[Incident],
    reports: Iterable[ReportFiled],
    acted_at: Mapping[UserId, int],
    det: DetectionSettings,
    seed: int,
) -> list[IncidentOutcome]:
    """Per incident, when each side could report it. `acted_at`: first restriction or reviewed case per
    account. Prevented incidents are returned with no detection (they did not happen)."""
    by_pair: dict[tuple[UserId, UserId], list[int]] = {}
    for r in reports:
        by_pair.setdefault((r.reporter, r.reported), []).append(r.at_ms)
    for times in by_pair.values():
        times.sort()
    context = int(det.report_context_days * _DAY_MS)
    items = list(incidents)
    draws = np.random.default_rng([seed, 11]).random(len(items)).tolist()
    out = []
    for inc, u in zip(items, draws, strict=True):
        if inc.prevented:
            out.append(IncidentOutcome(inc, None, None, None))
            continue
        reported = _report_covering(by_pair, inc, context)
        plain: list[int] = [] if reported is None else [reported]
        vigil: list[int] = [] if reported is None else [reported]
        if inc.image and inc.hash_matchable:
            if u < det.hash_recall:
                plain.append(inc.at_ms)
                on_device = not inc.modified_client or (det.receiver_side_matching and inc.victim is not None)
                if on_device:
                    vigil.append(inc.at_ms)
        elif inc.image:
            if u < det.image_classifier_recall:
                plain.append(inc.at_ms + int(det.image_classifier_delay_hours * HOUR_MS))
        elif u < det.text_classifier_recall:
            plain.append(inc.at_ms + int(det.text_classifier_delay_hours * HOUR_MS))
        out.append(
            IncidentOutcome(
                inc,
                min(plain) if plain else None,
                min(vigil) if vigil else None,
                acted_at.get(inc.offender),
            )
        )
    return out


def retention_table(outcomes: Iterable[IncidentOutcome]) -> dict[IncidentType, RetentionRow]:
    counts = {k: [0, 0, 0, 0, 0] for k in IncidentType}
    for o in outcomes:
        c = counts[o.incident.kind]
        if o.incident.prevented:
            c[4] += 1
            continue
        c[0] += 1
        c[1] += o.plaintext_at is not None
        c[2] += o.vigil_at is not None
        c[3] += o.without_content
    return {k: RetentionRow(k, *v) for k, v in counts.items()}

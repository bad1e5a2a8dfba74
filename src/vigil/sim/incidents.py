"""Incident ground truth: the harm the generator made happen (or would have, had no restriction stopped it).

The metadata event log says who wrote to whom; it cannot say what was harmful. The generator therefore
logs each incident as it creates it: its type, time, parties, whether it travels as an image or as text,
whether a hash list could match it (only images already known to the safety authority can), whether the
offender's client skips on-device matching, and whether it was *prevented* (the offender was restricted,
so the contact or message it needed never happened). `vigil.sim.score` compares what a plaintext-reading
server and what Vigil's channels would have caught of the same incidents.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vigil.errors import ValidationError
from vigil.safety.behavior.events import GroupId, UserId

__all__ = ["Incident", "IncidentType", "incident_from_record", "incident_to_record"]


class IncidentType(enum.StrEnum):
    KNOWN_IMAGE_SHARED = "known_image_shared"  # a hash-listed abuse image sent to someone directly
    COERCED_NEW_IMAGE = "coerced_new_image"  # a new image a minor produced under coercion or enticement
    ENTICEMENT = "enticement"  # an adult sexualising a conversation with a minor or asking for images
    SEXTORTION_THREAT = (
        "sextortion_threat"  # a threat to publish a minor's image unless they pay or send more
    )
    RING_DISTRIBUTION = "ring_distribution"  # an abuse image shared in an offenders' group

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


@dataclass(frozen=True, slots=True)
class Incident:
    kind: IncidentType
    at_ms: int
    offender: UserId
    victim: UserId | None  # the minor harmed; None for distribution among adults
    group: GroupId | None
    image: bool  # carried by an image (else by text)
    hash_matchable: bool  # an image already on a hash list
    modified_client: bool  # the sending client skips on-device matching
    prevented: bool  # would have happened, but a restriction stopped the contact it needed


def incident_to_record(incident: Incident) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "type": incident.kind.value,
        "t": incident.at_ms,
        "offender": incident.offender,
        "image": incident.image,
        "hash_matchable": incident.hash_matchable,
        "modified_client": incident.modified_client,
        "prevented": incident.prevented,
    }
    if incident.victim is not None:
        rec["victim"] = incident.victim
    if incident.group is not None:
        rec["group"] = incident.group
    return rec


def incident_from_record(rec: Mapping[str, Any]) -> Incident:
    """Raises ValidationError on a malformed record."""
    try:
        victim = rec.get("victim")
        group = rec.get("group")
        return Incident(
            IncidentType(rec["type"]),
            int(rec["t"]),
            UserId(str(rec["offender"])),
            None if victim is None else UserId(str(victim)),
            None if group is None else GroupId(str(group)),
            bool(rec["image"]),
            bool(rec["hash_matchable"]),
            bool(rec["modified_client"]),
            bool(rec["prevented"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationError(f"malformed incident record {dict(rec)!r}: {exc!r}") from exc

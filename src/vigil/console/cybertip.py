"""The console's CyberTipline pages: the lead's choices (incident type, a classification and annotations
per file) read from a form, checked against the schema's enumerations, and carried from the filing form to
the preview and on to the submission; the case's reportable files.
The filing service (`cybertip_filing`) builds the documents, talks to NCMEC and writes the audit log."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from vigil.errors import ValidationError, VigilError
from vigil.safety.ncmec import FileAnnotations, IncidentType, IndustryClassification
from vigil.server.context import ServerContext
from vigil.server.db.cybertip import CyberTipFilingRepository
from vigil.server.services.cybertip_documents import (
    AlreadyReported,
    EvidenceFile,
    FileClassification,
    gather_evidence,
)
from vigil.server.services.cybertip_filing import FilingState

__all__ = [
    "ANNOTATIONS",
    "CLASSIFICATIONS",
    "STATE_BADGES",
    "Choices",
    "FormValues",
    "can_file",
    "image_path",
    "parse_choices",
    "reportable_files",
]

CLASSIFICATIONS: tuple[tuple[str, str], ...] = (
    (IndustryClassification.A1.value, "prepubescent minor, explicit sexual activity"),
    (IndustryClassification.A2.value, "prepubescent minor, non-explicit nudity or sexual posing"),
    (IndustryClassification.B1.value, "pubescent minor, explicit sexual activity"),
    (IndustryClassification.B2.value, "pubescent minor, non-explicit nudity or sexual posing"),
)
_ANNOTATION_LABELS = {
    "anime_drawing_virtual_hentai": "Anime, drawing or virtual hentai",
    "potential_meme": "Potential meme",
    "viral": "Viral",
    "possible_self_production": "Possible self-production",
    "physical_harm": "Physical harm",
    "violence_gore": "Violence or gore",
    "bestiality": "Bestiality",
    "live_streaming": "Live streaming",
    "infant": "Infant",
    "generative_ai": "Generative AI",
}
# In the schema's order, straight from the document model so the two cannot drift apart.
ANNOTATIONS: tuple[tuple[str, str], ...] = tuple(
    (f.name, _ANNOTATION_LABELS[f.name]) for f in dataclasses.fields(FileAnnotations)
)
_ANNOTATION_NAMES = frozenset(name for name, _label in ANNOTATIONS)
MAX_FILES = 100
STATE_BADGES = {
    FilingState.FINISHED.value: "ok",
    FilingState.FAILED.value: "bad",
    FilingState.OUTCOME_UNKNOWN.value: "bad",
}


class FormValues(Protocol):
    """What `parse_choices` reads: a posted form or a query string."""

    def getlist(self, key: str) -> list[Any]: ...


@dataclass(frozen=True, slots=True)
class Choices:
    """A lead's choices for one filing. `classes` and `annotations` are keyed by the file's key
    (`match-3`, `item-7`)."""

    incident_type: IncidentType
    classes: dict[str, IndustryClassification] = field(default_factory=dict)
    annotations: dict[str, frozenset[str]] = field(default_factory=dict)

    def file_annotations(self, key: str) -> FileAnnotations | None:
        names = self.annotations.get(key, frozenset())
        return FileAnnotations(**{name: True for name in names}) if names else None

    def classifications(self) -> dict[str, FileClassification]:
        """The choices as the filing service takes them."""
        return {
            key: FileClassification(classification, self.annotations.get(key, frozenset()))
            for key, classification in self.classes.items()
        }

    def carried(self) -> list[tuple[str, str]]:
        """The choices as form fields, to carry them from the preview to the submission."""
        out = [("incident_type", self.incident_type.value)]
        for key in sorted(self.classes):
            out.append((f"class-{key}", self.classes[key].value))
            out.extend((f"ann-{key}", name) for name in sorted(self.annotations.get(key, ())))
        return out


def _one(form: FormValues, name: str) -> str:
    values = [v for v in form.getlist(name) if isinstance(v, str)]
    return values[0].strip() if len(values) == 1 else ""


def parse_choices(form: FormValues, file_keys: Iterable[str]) -> Choices:
    """The choices for a case whose reportable files have `file_keys`. Raises ValidationError naming the
    field: an incident type or a classification outside the schema's enumerations, a missing
    classification, an unknown annotation."""
    incident = _one(form, "incident_type")
    try:
        incident_type = IncidentType(incident)
    except ValueError:
        raise ValidationError("choose an incident type from the list") from None
    keys = list(file_keys)[:MAX_FILES]
    classes: dict[str, IndustryClassification] = {}
    annotations: dict[str, frozenset[str]] = {}
    for key in keys:
        try:
            classes[key] = IndustryClassification(_one(form, f"class-{key}"))
        except ValueError:
            raise ValidationError(f"classify file {key} as A1, A2, B1 or B2") from None
        names = frozenset(v for v in form.getlist(f"ann-{key}") if isinstance(v, str))
        unknown = names - _ANNOTATION_NAMES
        if unknown:
            raise ValidationError(f"unknown annotation for file {key}")
        annotations[key] = names
    return Choices(incident_type, classes, annotations)


async def reportable_files(ctx: ServerContext, case_id: int) -> tuple[str, list[EvidenceFile]]:
    """The case's subject and the files a new CyberTipline report would carry: verified report-item
    images and verified image matches not already in a finished report (as `prepare_filing` picks them).
    Raises NotFoundError, ValidationError when there is no verified CSAM evidence (or the voucher key is
    not configured here), AlreadyReported when every file is reported, StorageError."""
    async with ctx.sessions() as session:
        evidence = await gather_evidence(ctx, session, case_id)
        reported = await CyberTipFilingRepository(session).reported_sources(case_id)
    fresh = [f for f in evidence.files if (f.source, f.source_id) not in reported]
    if not fresh:
        filing_id, report_id = max(reported.values(), key=lambda found: found[0])
        raise AlreadyReported(filing_id, report_id, case_id)
    return evidence.subject, fresh


async def can_file(ctx: ServerContext, case_id: int) -> bool:
    """Whether the case has evidence a CyberTipline report could carry."""
    try:
        await reportable_files(ctx, case_id)
    except VigilError:
        return False
    return True


def image_path(file_key: str) -> str:
    """The console's always-blurred rendering of a reportable file ("item:ID" / "match:ID")."""
    source, _, number = file_key.partition(":")
    folder = "items" if source == "item" else "image-matches"
    return f"/{folder}/{int(number)}/image?blurred=1"

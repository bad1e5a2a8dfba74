"""The CyberTipline form's choices: read from a form, checked against the schema's enumerations, and
carried unchanged from the preview to the submission."""

from __future__ import annotations

import pytest
from starlette.datastructures import FormData, QueryParams

from vigil.console.cybertip import ANNOTATIONS, CLASSIFICATIONS, parse_choices
from vigil.errors import ValidationError
from vigil.safety.ncmec import FileAnnotations, IncidentType, IndustryClassification

INCIDENT = IncidentType.CHILD_PORNOGRAPHY.value


def test_choices_are_read_and_carried_round_trip() -> None:
    form = FormData(
        [
            ("incident_type", INCIDENT),
            ("class-match-3", "B2"),
            ("ann-match-3", "possible_self_production"),
            ("ann-match-3", "infant"),
            ("class-item-7", "A1"),
        ]
    )
    choices = parse_choices(form, ["match-3", "item-7"])
    assert choices.incident_type is IncidentType.CHILD_PORNOGRAPHY
    assert choices.classes == {"match-3": IndustryClassification.B2, "item-7": IndustryClassification.A1}
    assert choices.file_annotations("match-3") == FileAnnotations(possible_self_production=True, infant=True)
    assert choices.file_annotations("item-7") is None
    again = parse_choices(QueryParams(choices.carried()), ["match-3", "item-7"])
    assert again == choices


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ([("class-f", "A1")], "incident type"),
        ([("incident_type", "Something else"), ("class-f", "A1")], "incident type"),
        ([("incident_type", INCIDENT)], "classify file f"),
        ([("incident_type", INCIDENT), ("class-f", "C3")], "classify file f"),
        ([("incident_type", INCIDENT), ("class-f", "A1"), ("class-f", "B1")], "classify file f"),
        ([("incident_type", INCIDENT), ("class-f", "A1"), ("ann-f", "onclick")], "unknown annotation"),
    ],
)
def test_values_outside_the_enumerations_are_refused(fields: list[tuple[str, str]], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        parse_choices(FormData(fields), ["f"])


def test_the_form_offers_exactly_the_schema_s_values() -> None:
    assert [c for c, _meaning in CLASSIFICATIONS] == [c.value for c in IndustryClassification]
    # every annotation the form offers is one the document model writes, in the schema's order
    names = [name for name, _label in ANNOTATIONS]
    every = FileAnnotations(**{name: True for name in names})  # TypeError for a name the model lacks
    assert all(getattr(every, name) for name in names)
    assert names[0] == "anime_drawing_virtual_hentai" and names[-1] == "generative_ai" and len(names) == 10

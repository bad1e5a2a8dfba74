"""The builder's documents against the stand-in's validator, which was written from the spec independently of
`vigil.safety.ncmec` (so agreement is evidence, not circularity)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import defusedxml.ElementTree as DET
import pytest
from test_ncmec_documents import NOW, full_file_details, full_report, minimal_report

from vigil.ncmec_standin.schema import SchemaOptions, validate_document
from vigil.safety.ncmec import FileDetails, FileRelevance, file_details_xml, hashes_of, report_xml


@pytest.mark.parametrize("factory", [minimal_report, full_report], ids=["minimal", "full"])
def test_reports_are_valid_for_the_standin(factory: object) -> None:
    report = factory()  # type: ignore[operator]
    validate_document(DET.fromstring(report_xml(report, now=NOW)), "report", SchemaOptions(), NOW)


def test_a_future_incident_passes_the_standin_after_clamping() -> None:
    report = minimal_report()
    future = dataclasses.replace(
        report,
        incident_summary=dataclasses.replace(
            report.incident_summary, incident_date_time=NOW + timedelta(hours=5)
        ),
    )
    validate_document(DET.fromstring(report_xml(future, now=NOW)), "report", SchemaOptions(), NOW)


@pytest.mark.parametrize(
    "details",
    [
        full_file_details(),
        FileDetails(
            report_id=7,
            file_id="a" * 32,
            file_viewed_by_esp=False,
            publicly_available=False,
            file_relevance=FileRelevance.SUPPLEMENTAL_REPORTED,
            original_file_hashes=hashes_of(b"transcript"),
            additional_info=("Transcript of a private conversation involving the reported user.",),
        ),
    ],
    ids=["full", "supplemental"],
)
def test_file_details_are_valid_for_the_standin(details: FileDetails) -> None:
    validate_document(DET.fromstring(file_details_xml(details)), "fileDetails", SchemaOptions(), NOW)

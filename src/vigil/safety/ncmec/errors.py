"""Errors of the CyberTipline document layer (subclasses of `vigil.errors`)."""

from __future__ import annotations

from vigil.errors import ProtocolError, ValidationError

__all__ = ["CyberTiplineDocumentError", "CyberTiplineResponseError"]


class CyberTiplineDocumentError(ValidationError):
    """A report or fileDetails value breaks the CyberTipline schema rules (enumeration, length, order of
    events, cross-field rule). `field` names the offending element as `Type.xmlName`, e.g.
    `IncidentSummary.incidentType`."""

    code = "ncmec_invalid_document"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class CyberTiplineResponseError(ProtocolError):
    """A CyberTipline response body is not a well-formed, safe `<reportResponse>`/`<reportDoneResponse>`."""

    code = "ncmec_bad_response"

"""Parsing NCMEC's `<reportResponse>` and `<reportDoneResponse>` bodies, defensively (spec §2, §3, §6).

The body comes from the network, so it is untrusted: at most `MAX_RESPONSE_BYTES`, parsed by `defusedxml`
with DTDs, entities and external references refused, nesting capped, and the shape checked before any
value is believed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

import defusedxml
import defusedxml.ElementTree as DET

from vigil.safety.ncmec.enums import ResponseCode
from vigil.safety.ncmec.errors import CyberTiplineResponseError

__all__ = ["MAX_RESPONSE_BYTES", "MAX_RESPONSE_DEPTH", "CyberTiplineResponse", "parse_response"]

MAX_RESPONSE_BYTES = 1 << 20
MAX_RESPONSE_DEPTH = 8
_ROOTS = ("reportResponse", "reportDoneResponse")
_FIELDS = ("responseCode", "responseDescription", "reportId", "fileId", "hash", "files")


@dataclass(frozen=True, slots=True)
class CyberTiplineResponse:
    """One response. `response_code` keeps the raw integer: NCMEC's list of codes is non-exhaustive."""

    root: str  # "reportResponse" or "reportDoneResponse"
    response_code: int
    response_description: str | None = None
    report_id: int | None = None
    file_id: str | None = None
    hash: str | None = None  # MD5 of the uploaded bytes, on /upload
    file_ids: tuple[str, ...] = ()  # reportDoneResponse/files/fileId

    @property
    def ok(self) -> bool:
        return self.response_code == ResponseCode.SUCCESS

    @property
    def known_code(self) -> ResponseCode | None:
        try:
            return ResponseCode(self.response_code)
        except ValueError:
            return None


def _depth(root: ET.Element) -> int:
    deepest, stack = 0, [(root, 1)]
    while stack:
        element, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_RESPONSE_DEPTH:
            break
        stack.extend((child, depth + 1) for child in element)
    return deepest


def _int(name: str, text: str | None) -> int:
    value = (text or "").strip()
    if not value or not value.lstrip("-").isdigit() or len(value) > 20:
        raise CyberTiplineResponseError(f"{name} is not an integer: {value[:40]!r}")
    return int(value)


def parse_response(body: bytes | str) -> CyberTiplineResponse:
    """Parse a CyberTipline response body. Raises `CyberTiplineResponseError` on anything that is not a
    small, DTD-free, well-formed `<reportResponse>`/`<reportDoneResponse>` with an integer `responseCode`."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    if len(raw) > MAX_RESPONSE_BYTES:
        raise CyberTiplineResponseError(f"response body exceeds {MAX_RESPONSE_BYTES} bytes")
    if b"<!DOCTYPE" in raw.upper() or b"<!ENTITY" in raw.upper():
        raise CyberTiplineResponseError("response body carries a DTD or entity declaration")
    try:
        root = DET.fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        raise CyberTiplineResponseError(f"unsafe XML refused: {type(exc).__name__}") from None
    except ET.ParseError as exc:
        raise CyberTiplineResponseError(f"malformed XML: {exc}") from None
    if root.tag not in _ROOTS:
        raise CyberTiplineResponseError(f"unexpected root element {root.tag[:64]!r}")
    if _depth(root) > MAX_RESPONSE_DEPTH:
        raise CyberTiplineResponseError("response nests too deeply")

    seen: dict[str, ET.Element] = {}
    for child in root:
        if child.tag in _FIELDS:
            if child.tag in seen:
                raise CyberTiplineResponseError(f"duplicate {child.tag}")
            seen[child.tag] = child
        # unknown children are ignored: NCMEC may add fields
    if "responseCode" not in seen:
        raise CyberTiplineResponseError("response has no responseCode")

    def text(name: str) -> str | None:
        element = seen.get(name)
        if element is None or element.text is None:
            return None
        return element.text.strip() or None

    report_id_text = text("reportId")
    files = seen.get("files")
    return CyberTiplineResponse(
        root=root.tag,
        response_code=_int("responseCode", text("responseCode")),
        response_description=text("responseDescription"),
        report_id=None if report_id_text is None else _int("reportId", report_id_text),
        file_id=text("fileId"),
        hash=text("hash"),
        file_ids=()
        if files is None
        else tuple(f.text.strip() for f in files if f.tag == "fileId" and f.text and f.text.strip()),
    )

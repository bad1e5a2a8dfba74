"""The machinery shared by every CyberTipline element model.

Each model is a frozen, keyword-only dataclass whose **field order is the XSD sequence**; every field carries
a `Slot` in its metadata (XML name, kind, limits). `Element.to_xml` walks `dataclasses.fields()` in
declaration order, so a document's child order comes from the model, never from the caller. Validation
runs at construction (`__post_init__`), so an invalid model cannot exist.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any, Literal

from vigil.safety.ncmec.errors import CyberTiplineDocumentError

__all__ = ["Element", "Slot", "document_bytes", "format_datetime", "slot"]

Kind = Literal["str", "url", "ip", "int", "float", "bool", "datetime", "date", "enum", "element", "flag"]

# XML 1.0 `Char`: anything else (most C0 controls, lone surrogates, U+FFFE/U+FFFF) cannot be written at all.
_NOT_XML_CHAR = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_URL = re.compile(r"https?://[^\s/?#]+[^\s]*", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Slot:
    """How one model field maps to XML."""

    name: str  # the XML element (or attribute) name
    kind: Kind
    required: bool = False  # cardinality 1 (or 1+ for a repeated slot)
    repeated: bool = False  # cardinality 0+ / 1+: the value is a tuple
    attribute: bool = False  # written as an attribute of the parent
    text: bool = False  # written as the parent's text content
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    pattern: re.Pattern[str] | None = None
    enum: type[Enum] | None = None
    element: type[Element] | None = None


def slot(name: str, kind: Kind, **options: Any) -> Mapping[str, Slot]:
    """Field metadata: `field(default=None, metadata=slot("platform", "str", max_length=256))`."""
    return {"xml": Slot(name, kind, **options)}


def format_datetime(value: datetime) -> str:
    """ISO 8601 in UTC with a `Z` offset, to the second."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(value: object) -> str:
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


class Element:
    """Base of every element model (the subclasses are frozen keyword-only dataclasses)."""

    __slots__ = ()

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            spec: Slot = f.metadata["xml"]
            value = getattr(self, f.name)
            object.__setattr__(self, f.name, self._check_slot(spec, value))
        self._check()

    def _check(self) -> None:
        """Cross-field rules; subclasses override."""

    def _fail(self, spec_or_name: Slot | str, problem: str) -> CyberTiplineDocumentError:
        name = spec_or_name.name if isinstance(spec_or_name, Slot) else spec_or_name
        return CyberTiplineDocumentError(f"{type(self).__name__}.{name}", problem)

    def _check_slot(self, spec: Slot, value: object) -> object:
        if spec.repeated:
            if value is None:
                value = ()
            if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)):
                raise self._fail(spec, "expected a sequence of values")
            if spec.required and not value:
                raise self._fail(spec, "at least one value is required")
            return tuple(self._check_one(spec, item) for item in value)
        if value is None:
            if spec.required:
                raise self._fail(spec, "is required")
            return None
        return self._check_one(spec, value)

    def _check_one(self, spec: Slot, value: object) -> object:
        kind = spec.kind
        if kind == "enum":
            assert spec.enum is not None
            if isinstance(value, spec.enum):
                return value
            try:
                return spec.enum(value)
            except ValueError:
                allowed = ", ".join(repr(m.value) for m in spec.enum)
                raise self._fail(spec, f"{value!r} is not one of {allowed}") from None
        if kind in ("bool", "flag"):
            if not isinstance(value, bool):
                raise self._fail(spec, "must be true or false")
            return value
        if kind in ("int", "float"):
            if isinstance(value, bool) or not isinstance(value, (int, float) if kind == "float" else int):
                raise self._fail(spec, f"must be a{'n integer' if kind == 'int' else ' number'}")
            if spec.minimum is not None and value < spec.minimum:
                raise self._fail(spec, f"must be at least {spec.minimum:g}")
            if spec.maximum is not None and value > spec.maximum:
                raise self._fail(spec, f"must be at most {spec.maximum:g}")
            return value
        if kind == "datetime":
            if not isinstance(value, datetime):
                raise self._fail(spec, "must be a datetime")
            if value.tzinfo is None or value.utcoffset() is None:
                raise self._fail(spec, "must carry a time zone (the schema requires an offset)")
            return value
        if kind == "date":
            if not isinstance(value, date) or isinstance(value, datetime):
                raise self._fail(spec, "must be a date")
            return value
        if kind == "element":
            assert spec.element is not None
            if not isinstance(value, spec.element):
                raise self._fail(spec, f"must be a {spec.element.__name__}")
            return value
        # text kinds
        if not isinstance(value, str):
            raise self._fail(spec, "must be text")
        if not value.strip():
            raise self._fail(spec, "must not be blank")
        if spec.max_length is not None and len(value) > spec.max_length:
            raise self._fail(spec, f"is {len(value)} characters long; the limit is {spec.max_length}")
        if _NOT_XML_CHAR.search(value):
            raise self._fail(spec, "contains a character XML cannot carry")
        if spec.pattern is not None and not spec.pattern.fullmatch(value):
            raise self._fail(spec, f"does not match {spec.pattern.pattern}")
        if kind == "url" and not _URL.fullmatch(value):
            raise self._fail(spec, "must be an http(s) URL without whitespace")
        if kind == "ip":
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise self._fail(spec, "is not an IP address") from None
        return value

    # -- serialisation ------------------------------------------------------------------------------------

    def fill(self, element: ET.Element) -> None:
        """Write this model's attributes, text and children (in field order) into `element`."""
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            spec: Slot = f.metadata["xml"]
            value = getattr(self, f.name)
            if value is None:
                continue
            if spec.attribute:
                element.set(spec.name, _text(value))
            elif spec.text:
                element.text = _text(value)
            else:
                for item in value if spec.repeated else (value,):
                    _append(element, spec, item)

    def to_element(self, tag: str) -> ET.Element:
        element = ET.Element(tag)
        self.fill(element)
        return element


def _append(parent: ET.Element, spec: Slot, value: object) -> None:
    if spec.kind == "flag":
        if value:
            ET.SubElement(parent, spec.name)
        return
    child = ET.SubElement(parent, spec.name)
    if isinstance(value, Element):
        value.fill(child)
    else:
        child.text = _text(value)


def document_bytes(root: ET.Element) -> bytes:
    """The UTF-8 document with its XML declaration. ElementTree escapes `&`, `<`, `>` and quotes."""
    document: bytes = ET.tostring(root, encoding="UTF-8", xml_declaration=True)
    return document

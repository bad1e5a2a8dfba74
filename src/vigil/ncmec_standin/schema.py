"""The CyberTipline document schema as data, and a validator that answers as NCMEC's does.

Written from `shared/ncmec-cybertipline.md` §4–§5 independently of `vigil.safety.ncmec` (the report
builder), so that tests of the builder against the stand-in are not circular. Each complex element is an
`xs:sequence`: the children must follow the canonical order, optional ones may be left out, repeats are
allowed only where the cardinality is `*`/`+` and only next to each other, required ones must be present,
and no unknown child is allowed. Any breach is code 4100 with a Xerces-style message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

__all__ = [
    "COMPLEX_TYPES",
    "ROOTS",
    "Attr",
    "Child",
    "Complex",
    "DocumentInvalid",
    "SchemaOptions",
    "Simple",
    "validate_document",
]

Kind = Literal[
    "string", "empty", "bool", "datetime", "date", "long", "int", "decimal", "enum", "url", "email"
]
Card = Literal["1", "?", "*", "+"]


class DocumentInvalid(Exception):
    """A document the validator refuses; `message` is what NCMEC's validator would say after
    "Validation failed"."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class SchemaOptions:
    """Switches for rules the spec marks as inferred or as "newer schema" only."""

    newer_schema: bool = True  # `batchedReport` in <report>, `fileName` in <fileDetails>
    extra_report_annotations: bool = False  # `potentialAggravatingFactors`, `instrumentalUse` (unconfirmed)
    require_zone_offset: bool = True  # date-times must carry `Z` or `±hh:mm`
    forbid_future_incident: bool = True  # `incidentDateTime` later than the stand-in's clock


@dataclass(frozen=True)
class Simple:
    kind: Kind = "string"
    max_len: int | None = None
    values: tuple[str, ...] = ()
    lo: float | None = None
    hi: float | None = None
    non_blank: bool = False
    pattern: str | None = None
    attrs: tuple[Attr, ...] = ()


@dataclass(frozen=True)
class Attr:
    name: str
    type: Simple
    required: bool = False


@dataclass(frozen=True)
class Child:
    name: str
    card: Card
    type: str | Simple  # a key of COMPLEX_TYPES, or a simple type
    newer: bool = False  # present only in the newer schema (SchemaOptions.newer_schema)
    inferred: bool = False  # present only with SchemaOptions.extra_report_annotations


@dataclass(frozen=True)
class Complex:
    children: tuple[Child, ...] = ()
    choice: bool = False  # exactly one of the children
    attrs: tuple[Attr, ...] = ()
    any_content: bool = False  # content not checked until the real XSD is in hand
    extra: tuple[Callable[[Any, SchemaOptions], None], ...] = field(default=())


def _s(max_len: int | None = None, **kw: Any) -> Simple:
    return Simple("string", max_len=max_len, **kw)


STR = _s()
EMPTY = Simple("empty")
BOOL = Simple("bool")
DATETIME = Simple("datetime")
DATE = Simple("date")
LONG = Simple("long")
URL = Simple("url", max_len=2083)
EVENT_NAME = Simple("enum", values=("Login", "Registration", "Purchase", "Upload", "Other", "Unknown"))
EMAIL = Simple(
    "email",
    max_len=255,
    attrs=(
        Attr("type", Simple("enum", values=("Home", "Work", "Business", "Recovery"))),
        Attr("verified", BOOL),
        Attr("verificationDate", DATETIME),
    ),
)
PHONE = _s(
    50,
    attrs=(
        Attr(
            "type",
            Simple("enum", values=("Mobile", "Home", "Business", "Work", "Fax", "Internet", "Recovery")),
        ),
        Attr("verified", BOOL),
        Attr("verificationDate", DATETIME),
        Attr("countryCallingCode", _s(pattern=r"\+[0-9]{1,3}")),
        Attr("extension", _s(pattern=r"[0-9]{1,10}")),
    ),
)

INCIDENT_TYPES = (
    "Child Pornography (possession, manufacture, and distribution)",
    "Child Sex Trafficking",
    "Child Sex Tourism",
    "Child Sexual Molestation",
    "Misleading Domain Name",
    "Misleading Words or Digital Images on the Internet",
    "Online Enticement of Children for Sexual Acts",
    "Unsolicited Obscene Material Sent to a Child",
)


def _c(name: str, card: Card, type_: str | Simple, **kw: Any) -> Child:
    return Child(name, card, type_, **kw)


def _file_details_rules(element: Any, options: SchemaOptions) -> None:
    """§5 cross-field rules: only `Reported` files are classified or flagged as memes; EXIF viewed
    implies file viewed."""
    relevance = (element.findtext("fileRelevance") or "Reported").strip()
    if relevance == "Supplemental Reported":
        if element.find("industryClassification") is not None:
            raise DocumentInvalid(
                "fileDetails: industryClassification is allowed only on a file whose fileRelevance is "
                "Reported"
            )
        annotations = element.find("fileAnnotations")
        if annotations is not None and annotations.find("potentialMeme") is not None:
            raise DocumentInvalid(
                "fileDetails: potentialMeme is allowed only on a file whose fileRelevance is Reported"
            )
    exif = (element.findtext("exifViewedByEsp") or "").strip() in ("true", "1")
    viewed = (element.findtext("fileViewedByEsp") or "").strip() in ("true", "1")
    if exif and not viewed:
        raise DocumentInvalid("fileDetails: exifViewedByEsp is true but fileViewedByEsp is not true")


_PERSON_COMMON = (
    _c("espIdentifier", "?", _s(255)),
    _c("espService", "?", _s(100)),
    _c("compromisedAccount", "?", BOOL),
    _c("screenName", "?", _s(256)),
    _c("displayName", "*", STR),
    _c("profileUrl", "*", URL),
    _c("profileBio", "?", STR),
    _c("ipCaptureEvent", "*", "ipCaptureEvent"),
    _c("deviceId", "*", "deviceId"),
)

# The schema order as data: every complex type, its children in `xs:sequence` order.
COMPLEX_TYPES: Mapping[str, Complex] = {
    "report": Complex(
        (
            _c("batchedReport", "?", "batchedReport", newer=True),
            _c("incidentSummary", "1", "incidentSummary"),
            _c("internetDetails", "*", "internetDetails"),
            _c("lawEnforcement", "?", "lawEnforcement"),
            _c("reporter", "1", "reporter"),
            _c("personOrUserReported", "?", "personOrUserReported"),
            _c("intendedRecipient", "*", "intendedRecipient"),
            _c("victim", "*", "victim"),
            _c("additionalInfo", "?", STR),
        ),
        attrs=(Attr("{http://www.w3.org/2001/XMLSchema-instance}noNamespaceSchemaLocation", STR),),
    ),
    "batchedReport": Complex(
        attrs=(Attr("reason", Simple("enum", values=("VIRAL_POTENTIAL_MEME",)), required=True),)
    ),
    "incidentSummary": Complex(
        (
            _c("incidentType", "1", Simple("enum", values=INCIDENT_TYPES)),
            _c("platform", "?", _s(256)),
            _c("escalateToHighPriority", "?", _s(3000)),
            _c("reportAnnotations", "?", "reportAnnotations"),
            _c("incidentDateTime", "1", Simple("datetime", non_blank=True)),
            _c("incidentDateTimeDescription", "?", _s(3000)),
        )
    ),
    "reportAnnotations": Complex(
        (
            _c("sextortion", "?", EMPTY),
            _c("csamSolicitation", "?", EMPTY),
            _c("minorToMinorInteraction", "?", EMPTY),
            _c("spam", "?", EMPTY),
            _c("sadisticOnlineExploitation", "?", EMPTY),
            _c("informational", "?", EMPTY),
            _c("potentialAggravatingFactors", "?", EMPTY, inferred=True),
            _c("instrumentalUse", "?", EMPTY, inferred=True),
        )
    ),
    "internetDetails": Complex(
        (
            _c("webPageIncident", "1", "webPageIncident"),
            _c("emailIncident", "1", "emailIncident"),
            _c("newsgroupIncident", "1", "newsgroupIncident"),
            _c("chatImIncident", "1", "chatImIncident"),
            _c("onlineGamingIncident", "1", "onlineGamingIncident"),
            _c("cellPhoneIncident", "1", "cellPhoneIncident"),
            _c("nonInternetIncident", "1", "nonInternetIncident"),
            _c("peer2peerIncident", "1", "peer2peerIncident"),
        ),
        choice=True,
    ),
    "webPageIncident": Complex(
        (_c("url", "*", URL), _c("additionalInfo", "?", STR)),
        attrs=(Attr("thirdPartyHostedContent", BOOL),),
    ),
    "emailIncident": Complex(
        (_c("emailAddress", "*", EMAIL), _c("content", "?", STR), _c("additionalInfo", "?", STR))
    ),
    "newsgroupIncident": Complex(
        (
            _c("name", "?", _s(255)),
            _c("emailAddress", "*", EMAIL),
            _c("content", "?", STR),
            _c("additionalInfo", "?", STR),
        )
    ),
    "chatImIncident": Complex(
        (
            _c("chatClient", "?", _s(255)),
            _c("chatRoomName", "?", _s(255)),
            _c("content", "?", STR),
            _c("additionalInfo", "?", STR),
        )
    ),
    "onlineGamingIncident": Complex(
        (
            _c("gameName", "?", _s(255)),
            _c("console", "?", _s(255)),
            _c("content", "?", STR),
            _c("additionalInfo", "?", STR),
        )
    ),
    "cellPhoneIncident": Complex(
        (
            _c("phoneNumber", "?", PHONE),
            _c("latitude", "?", Simple("decimal", lo=-90, hi=90)),
            _c("longitude", "?", Simple("decimal", lo=-180, hi=180)),
            _c("additionalInfo", "?", STR),
        )
    ),
    "nonInternetIncident": Complex(
        (
            _c("locationName", "?", _s(255)),
            _c("incidentAddress", "*", "address"),
            _c("additionalInfo", "?", STR),
        )
    ),
    "peer2peerIncident": Complex(
        (
            _c("client", "?", _s(255)),
            _c("ipCaptureEvent", "*", "ipCaptureEvent"),
            _c("fileNames", "?", STR),
            _c("additionalInfo", "?", STR),
        )
    ),
    "lawEnforcement": Complex(
        (
            _c("agencyName", "1", _s(255, non_blank=True)),
            _c("caseNumber", "?", _s(100)),
            _c("officerContact", "?", "contactPerson"),
            _c("reportedToLe", "?", BOOL),
            _c("servedLegalProcessDomestic", "?", BOOL),
            _c("servedLegalProcessInternational", "?", BOOL),
        ),
        attrs=(Attr("fleaCountry", _s(100)),),
    ),
    "reporter": Complex(
        (
            _c("reportingPerson", "1", "person"),
            _c("contactPerson", "?", "contactPerson"),
            _c("companyTemplate", "?", STR),
            _c("termsOfService", "?", _s(3000)),
            _c("legalURL", "?", URL),
        )
    ),
    "personOrUserReported": Complex(
        (
            _c("personOrUserReportedPerson", "?", "person"),
            _c("vehicleDescription", "?", _s(300)),
            _c("espIdentifier", "?", _s(255)),
            _c("espService", "?", _s(100)),
            _c("compromisedAccount", "?", BOOL),
            _c("screenName", "?", _s(256)),
            _c("displayName", "*", STR),
            _c("profileUrl", "*", URL),
            _c("profileBio", "?", STR),
            _c("ipCaptureEvent", "*", "ipCaptureEvent"),
            _c("deviceId", "*", "deviceId"),
            _c("thirdPartyUserReported", "?", BOOL),
            _c("priorCTReports", "*", LONG),
            _c("groupIdentifier", "?", _s(255)),
            _c("accountTemporarilyDisabled", "?", BOOL),
            _c("accountPermanentlyDisabled", "?", BOOL),
            _c("estimatedLocation", "?", "estimatedLocation"),
            _c("allEmailsReported", "?", BOOL),
            _c("associatedAccount", "*", "associatedAccount"),
            _c("additionalInfo", "?", STR),
        )
    ),
    "intendedRecipient": Complex(
        (
            _c("intendedRecipientPerson", "?", "person"),
            *_PERSON_COMMON,
            _c("priorCTReports", "*", LONG),
            _c("groupIdentifier", "?", _s(255)),
            _c("accountTemporarilyDisabled", "?", BOOL),
            _c("accountPermanentlyDisabled", "?", BOOL),
            _c("estimatedLocation", "?", "estimatedLocation"),
            _c("allEmailsReported", "?", BOOL),
            _c("additionalInfo", "?", STR),
        )
    ),
    "victim": Complex(
        (
            _c("victimPerson", "1", "person"),
            *_PERSON_COMMON,
            _c("schoolName", "?", _s(255)),
            _c("priorCTReports", "*", LONG),
            _c("estimatedLocation", "?", "estimatedLocation"),
            _c("allEmailsReported", "?", BOOL),
            _c("associatedAccount", "*", "associatedAccount"),
            _c("additionalInfo", "?", STR),
        )
    ),
    "person": Complex(
        (
            _c("firstName", "?", _s(100)),
            _c("lastName", "?", _s(100)),
            _c("phone", "*", PHONE),
            _c("email", "*", EMAIL),
            _c("address", "*", "address"),
            _c("age", "?", Simple("int", lo=0, hi=150)),
            _c("ageAssertionDiscrepancy", "?", BOOL),
            _c("dateOfBirth", "?", DATE),
        )
    ),
    "contactPerson": Complex(
        (
            _c("firstName", "?", _s(100)),
            _c("lastName", "?", _s(100)),
            _c("phone", "*", PHONE),
            _c("email", "*", EMAIL),
            _c("address", "*", "address"),
        )
    ),
    "address": Complex(
        (
            _c("address", "?", _s(255)),
            _c("city", "?", _s(100)),
            _c("zipCode", "?", _s(20)),
            _c("state", "?", _s(100)),
            _c("nonUsaState", "?", _s(100)),
            _c("country", "?", _s(100)),
        ),
        attrs=(
            Attr("type", Simple("enum", values=("Home", "Business", "Billing", "Shipping", "Technical"))),
        ),
    ),
    "ipCaptureEvent": Complex(
        (
            _c("ipAddress", "1", _s(255, non_blank=True)),
            _c("eventName", "?", EVENT_NAME),
            _c("dateTime", "?", DATETIME),
            _c("possibleProxy", "?", BOOL),
            _c("port", "?", Simple("int", lo=1, hi=65535)),
        )
    ),
    "deviceId": Complex(
        (
            _c("idType", "1", _s(255, non_blank=True)),
            _c("idValue", "1", _s(2083, non_blank=True)),
            _c("eventName", "?", EVENT_NAME),
            _c("dateTime", "?", DATETIME),
        )
    ),
    "estimatedLocation": Complex(
        (
            _c("city", "?", _s(100)),
            _c("region", "?", _s(100)),
            _c("countryCode", "?", _s(pattern=r"[A-Z]{2}")),
        ),
        attrs=(Attr("verified", BOOL), Attr("timestamp", DATETIME)),
    ),
    "associatedAccount": Complex(
        any_content=True,
        attrs=(
            Attr(
                "accountType",
                Simple(
                    "enum", values=("Billing", "Linked", "Business", "Creator", "Parent/Guardian", "Other")
                ),
            ),
            Attr("thirdPartyUser", BOOL),
        ),
    ),
    "fileDetails": Complex(
        (
            _c("reportId", "1", LONG),
            _c("fileId", "1", _s(non_blank=True)),
            _c("fileName", "?", STR, newer=True),
            _c("originalFileName", "?", _s(2056)),
            _c("uploadedToEspTimestamp", "?", DATETIME),
            _c("locationOfFile", "?", URL),
            _c("fileViewedByEsp", "?", BOOL),
            _c("exifViewedByEsp", "?", BOOL),
            _c("publiclyAvailable", "?", BOOL),
            _c("fileRelevance", "?", Simple("enum", values=("Reported", "Supplemental Reported"))),
            _c("fileAnnotations", "?", "fileAnnotations"),
            _c("industryClassification", "?", Simple("enum", values=("A1", "A2", "B1", "B2"))),
            _c(
                "originalFileHash",
                "*",
                _s(attrs=(Attr("hashType", _s(64, non_blank=True), required=True),)),
            ),
            _c("ipCaptureEvent", "?", "ipCaptureEvent"),
            _c("deviceId", "*", "deviceId"),
            _c("details", "*", "details"),
            _c("additionalInfo", "*", STR),
        ),
        extra=(_file_details_rules,),
    ),
    "fileAnnotations": Complex(
        tuple(
            _c(name, "?", EMPTY)
            for name in (
                "animeDrawingVirtualHentai",
                "potentialMeme",
                "viral",
                "possibleSelfProduction",
                "physicalHarm",
                "violenceGore",
                "bestiality",
                "liveStreaming",
                "infant",
                "generativeAi",
            )
        )
    ),
    "details": Complex(
        (_c("nameValuePair", "+", "nameValuePair"),),
        attrs=(Attr("type", Simple("enum", values=("EXIF", "HASH"))),),
    ),
    "nameValuePair": Complex((_c("name", "1", _s(64, non_blank=True)), _c("value", "1", STR))),
}

# The request roots each endpoint accepts.
ROOTS = {"submit": "report", "fileinfo": "fileDetails"}

_OFFSET = re.compile(r"(Z|[+-]\d{2}:\d{2})$")


def _children_of(complex_type: Complex, options: SchemaOptions) -> tuple[Child, ...]:
    return tuple(
        child
        for child in complex_type.children
        if (options.newer_schema or not child.newer)
        and (options.extra_report_annotations or not child.inferred)
    )


def _expected(children: tuple[Child, ...], start: int) -> str:
    """The names a validator would list as acceptable from position `start`: up to the first required."""
    names: list[str] = []
    for child in children[start:]:
        names.append(child.name)
        if child.card in ("1", "+"):
            break
    return "{" + ", ".join(names) + "}"


def _check_attrs(element: Any, allowed: tuple[Attr, ...], path: str, options: SchemaOptions) -> None:
    by_name = {attr.name: attr for attr in allowed}
    for name, value in element.attrib.items():
        attr = by_name.get(name)
        if attr is None:
            raise DocumentInvalid(f"{path}: cvc-complex-type.3.2.2: Attribute '{name}' is not allowed")
        _check_value(attr.type, value, f"{path}/@{name}", options, None)
    for attr in allowed:
        if attr.required and attr.name not in element.attrib:
            raise DocumentInvalid(f"{path}: cvc-complex-type.4: Attribute '{attr.name}' must appear")


def _parse_datetime(text: str, options: SchemaOptions) -> datetime | None:
    if options.require_zone_offset and not _OFFSET.search(text):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _check_value(simple: Simple, raw: str, path: str, options: SchemaOptions, now: datetime | None) -> None:
    text = raw.strip()
    bad = f"{path}: cvc-type.3.1.3: The value '{raw[:80]}' is not valid"
    if simple.kind == "empty":
        if raw.strip():
            raise DocumentInvalid(f"{path}: cvc-complex-type.2.1: Element must have no character content")
        return
    if simple.non_blank and not text:
        raise DocumentInvalid(f"{path}: cvc-minLength-valid: the value must not be blank")
    if simple.max_len is not None and len(raw) > simple.max_len:
        raise DocumentInvalid(
            f"{path}: cvc-maxLength-valid: Value with length = '{len(raw)}' is not facet-valid with "
            f"respect to maxLength '{simple.max_len}'"
        )
    if simple.pattern is not None and not re.fullmatch(simple.pattern, raw):
        raise DocumentInvalid(f"{bad} with respect to pattern '{simple.pattern}'")
    if simple.kind == "enum":
        if raw not in simple.values:
            raise DocumentInvalid(
                f"{path}: cvc-enumeration-valid: Value '{raw[:80]}' is not facet-valid with respect to "
                f"enumeration '[{', '.join(simple.values)}]'"
            )
    elif simple.kind == "bool":
        if text not in ("true", "false", "1", "0"):
            raise DocumentInvalid(f"{bad} for 'boolean'")
    elif simple.kind in ("long", "int"):
        if not re.fullmatch(r"[+-]?[0-9]+", text):
            raise DocumentInvalid(f"{bad} for 'integer'")
        _check_range(simple, int(text), bad)
    elif simple.kind == "decimal":
        try:
            number = float(text)
        except ValueError:
            raise DocumentInvalid(f"{bad} for 'decimal'") from None
        _check_range(simple, number, bad)
    elif simple.kind == "date":
        try:
            date.fromisoformat(text)
        except ValueError:
            raise DocumentInvalid(f"{bad} for 'date'") from None
    elif simple.kind == "datetime":
        moment = _parse_datetime(text, options)
        if moment is None:
            raise DocumentInvalid(f"{bad} for 'dateTime' (ISO 8601 with a zone offset)")
        if now is not None and moment > now:
            raise DocumentInvalid(f"{path}: the date-time '{text}' is in the future")
    elif simple.kind == "url":
        if not raw or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in raw):
            raise DocumentInvalid(f"{bad} for 'url' (blank, or whitespace or control characters)")
    elif simple.kind == "email":
        local, at, domain = raw.partition("@")
        if not (local and at and domain) or any(ch.isspace() for ch in raw):
            raise DocumentInvalid(f"{bad} for 'email'")


def _check_range(simple: Simple, number: float, bad: str) -> None:
    if (simple.lo is not None and number < simple.lo) or (simple.hi is not None and number > simple.hi):
        raise DocumentInvalid(f"{bad}: out of range [{simple.lo}, {simple.hi}]")


def _validate_simple(
    element: Any, simple: Simple, path: str, options: SchemaOptions, now: datetime | None
) -> None:
    if len(element):
        raise DocumentInvalid(
            f"{path}: cvc-type.3.1.2: Element is a simple type, so it must have no element children"
        )
    _check_attrs(element, simple.attrs, path, options)
    _check_value(simple, element.text or "", path, options, now)


def _validate_complex(element: Any, type_name: str, path: str, options: SchemaOptions, now: datetime) -> None:
    complex_type = COMPLEX_TYPES[type_name]
    _check_attrs(element, complex_type.attrs, path, options)
    if complex_type.any_content:
        return
    if (element.text or "").strip() or any((child.tail or "").strip() for child in element):
        raise DocumentInvalid(
            f"{path}: cvc-complex-type.2.3: Element '{element.tag}' cannot have character [children]"
        )
    children = _children_of(complex_type, options)
    by_name = {child.name: index for index, child in enumerate(children)}
    if complex_type.choice:
        if len(element) != 1:
            raise DocumentInvalid(
                f"{path}: cvc-complex-type.2.4: '{element.tag}' must hold exactly one of "
                f"'{{{', '.join(by_name)}}}', found {len(element)}"
            )
        only = element[0]
        if only.tag not in by_name:
            raise DocumentInvalid(
                f"{path}: cvc-complex-type.2.4.a: Invalid content was found starting with element "
                f"'{only.tag}'. One of '{{{', '.join(by_name)}}}' is expected."
            )
        _validate_child(only, children[by_name[only.tag]], path, options, now)
        return
    last = -1
    for found in element:
        index = by_name.get(found.tag) if isinstance(found.tag, str) else None
        start = last if last >= 0 and children[last].card in ("*", "+") else last + 1
        if index is None or index < last or (index == last and children[last].card not in ("*", "+")):
            raise DocumentInvalid(
                f"{path}: cvc-complex-type.2.4.a: Invalid content was found starting with element "
                f"'{found.tag}'. One of '{_expected(children, start)}' is expected."
            )
        for skipped in children[last + 1 : index]:
            if skipped.card in ("1", "+"):
                raise DocumentInvalid(
                    f"{path}: cvc-complex-type.2.4.a: Invalid content was found starting with element "
                    f"'{found.tag}'. One of '{_expected(children, start)}' is expected."
                )
        last = index
        _validate_child(found, children[index], path, options, now)
    for missing in children[last + 1 :]:
        if missing.card in ("1", "+"):
            raise DocumentInvalid(
                f"{path}: cvc-complex-type.2.4.b: The content of element '{element.tag}' is not complete. "
                f"One of '{_expected(children, last + 1)}' is expected."
            )
    for rule in complex_type.extra:
        rule(element, options)


def _validate_child(element: Any, child: Child, parent: str, options: SchemaOptions, now: datetime) -> None:
    path = f"{parent}/{child.name}"
    if isinstance(child.type, str):
        _validate_complex(element, child.type, path, options, now)
        return
    future_checked = options.forbid_future_incident and child.name == "incidentDateTime"
    _validate_simple(element, child.type, path, options, now if future_checked else None)


def validate_document(root: Any, expected_root: str, options: SchemaOptions, now: datetime) -> None:
    """Raise `DocumentInvalid` unless `root` (a parsed ElementTree element) is a valid `expected_root`."""
    if root.tag != expected_root:
        raise DocumentInvalid(
            f"cvc-elt.1.a: Cannot find the declaration of element '{root.tag}' (expected '{expected_root}')"
        )
    _validate_complex(root, expected_root, expected_root, options, now)

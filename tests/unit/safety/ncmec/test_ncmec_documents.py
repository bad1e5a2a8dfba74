"""CyberTipline `<report>` and `<fileDetails>` documents (spec `ncmec-cybertipline.md` §4, §5, §7)."""

from __future__ import annotations

import dataclasses
import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone

import defusedxml.ElementTree as DET
import pytest

from ncmec_samples import SPEC_MINIMAL_REPORT
from vigil.errors import ValidationError, VigilError
from vigil.safety.ncmec import (
    Address,
    AddressType,
    BatchedReport,
    BatchReason,
    ChatImIncident,
    ContactPerson,
    CyberTiplineDocumentError,
    Details,
    DetailsType,
    DeviceId,
    Email,
    EmailType,
    EstimatedLocation,
    EventName,
    FileAnnotations,
    FileDetails,
    FileRelevance,
    HashMatchFacts,
    IncidentSummary,
    IncidentType,
    IndustryClassification,
    IntendedRecipient,
    InternetDetails,
    IpCaptureEvent,
    LawEnforcement,
    NameValuePair,
    OriginalFileHash,
    Person,
    PersonOrUserReported,
    Phone,
    PhoneType,
    Report,
    ReportAnnotations,
    Reporter,
    Victim,
    WebPageIncident,
    clamp_to_past,
    file_details_xml,
    hashes_of,
    report_xml,
)

NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
T = datetime(2026, 11, 29, 21, 14, 3, tzinfo=UTC)

# The canonical sequences, transcribed from the spec (independently of the models).
REPORT = ["batchedReport", "incidentSummary", "internetDetails", "lawEnforcement", "reporter",
          "personOrUserReported", "intendedRecipient", "victim", "additionalInfo"]  # fmt: skip
INCIDENT_SUMMARY = ["incidentType", "platform", "escalateToHighPriority", "reportAnnotations",
                    "incidentDateTime", "incidentDateTimeDescription"]  # fmt: skip
REPORT_ANNOTATIONS = ["sextortion", "csamSolicitation", "minorToMinorInteraction", "spam",
                      "sadisticOnlineExploitation", "informational"]  # fmt: skip
LAW_ENFORCEMENT = ["agencyName", "caseNumber", "officerContact", "reportedToLe", "servedLegalProcessDomestic",
                   "servedLegalProcessInternational"]  # fmt: skip
REPORTER = ["reportingPerson", "contactPerson", "companyTemplate", "termsOfService", "legalURL"]
PERSON = [
    "firstName",
    "lastName",
    "phone",
    "email",
    "address",
    "age",
    "ageAssertionDiscrepancy",
    "dateOfBirth",
]
CONTACT = ["firstName", "lastName", "phone", "email", "address"]
ADDRESS = ["address", "city", "zipCode", "state", "nonUsaState", "country"]
SUSPECT = ["personOrUserReportedPerson", "vehicleDescription", "espIdentifier", "espService",
           "compromisedAccount", "screenName", "displayName", "profileUrl", "profileBio", "ipCaptureEvent",
           "deviceId", "thirdPartyUserReported", "priorCTReports", "groupIdentifier",
           "accountTemporarilyDisabled", "accountPermanentlyDisabled", "estimatedLocation",
           "allEmailsReported", "additionalInfo"]  # fmt: skip
RECIPIENT = ["intendedRecipientPerson", "espIdentifier", "espService", "compromisedAccount", "screenName",
             "displayName", "profileUrl", "profileBio", "ipCaptureEvent", "deviceId", "priorCTReports",
             "groupIdentifier", "accountTemporarilyDisabled", "accountPermanentlyDisabled",
             "estimatedLocation", "allEmailsReported", "additionalInfo"]  # fmt: skip
VICTIM = ["victimPerson", "espIdentifier", "espService", "compromisedAccount", "screenName", "displayName",
          "profileUrl", "profileBio", "ipCaptureEvent", "deviceId", "schoolName", "priorCTReports",
          "estimatedLocation", "allEmailsReported", "additionalInfo"]  # fmt: skip
IP_CAPTURE = ["ipAddress", "eventName", "dateTime", "possibleProxy", "port"]
DEVICE = ["idType", "idValue", "eventName", "dateTime"]
LOCATION = ["city", "region", "countryCode"]
FILE_DETAILS = ["reportId", "fileId", "originalFileName", "uploadedToEspTimestamp", "locationOfFile",
                "fileViewedByEsp", "exifViewedByEsp", "publiclyAvailable", "fileRelevance", "fileAnnotations",
                "industryClassification", "originalFileHash", "ipCaptureEvent", "deviceId", "details",
                "additionalInfo"]  # fmt: skip
FILE_ANNOTATIONS = ["animeDrawingVirtualHentai", "potentialMeme", "viral", "possibleSelfProduction",
                    "physicalHarm", "violenceGore", "bestiality", "liveStreaming", "infant",
                    "generativeAi"]  # fmt: skip


def _shape(element: ET.Element) -> tuple[object, ...]:
    """Tag, attributes, stripped text and children, recursively: the document minus layout whitespace."""
    return (
        element.tag,
        dict(element.attrib),
        (element.text or "").strip(),
        [_shape(child) for child in element],
    )


def _parse(document: bytes | str) -> ET.Element:
    root: ET.Element = DET.fromstring(document)
    return root


def _tags(element: ET.Element) -> list[str]:
    """Child names with contiguous repeats collapsed."""
    tags: list[str] = []
    for child in element:
        if not tags or tags[-1] != child.tag:
            tags.append(child.tag)
    return tags


def minimal_report() -> Report:
    return Report(
        incident_summary=IncidentSummary(
            incident_type=IncidentType.ONLINE_ENTICEMENT,
            report_annotations=ReportAnnotations(sextortion=True, csam_solicitation=True),
            incident_date_time=T,
        ),
        internet_details=(InternetDetails(chat_im=ChatImIncident(chat_client="Vigil")),),
        reporter=Reporter(
            reporting_person=Person(emails=(Email(address="safety@vigil.example"),)),
            company_template="Vigil",
            legal_url="https://vigil.example/terms",
        ),
        person_or_user_reported=PersonOrUserReported(
            esp_identifier="acct_7f3c",
            esp_service="Vigil",
            screen_name="example_handle",
            ip_capture_events=(
                IpCaptureEvent(
                    ip_address="198.51.100.23",
                    event_name=EventName.LOGIN,
                    date_time=datetime(2026, 11, 29, 20, 58, 10, tzinfo=UTC),
                ),
            ),
        ),
        victims=(Victim(person=Person(age=13), esp_identifier="acct_19aa"),),
    )


def full_person() -> Person:
    return Person(
        first_name="Ann",
        last_name="Example",
        phones=(Phone(number="5550100", type=PhoneType.MOBILE, country_calling_code="+1", extension="12"),),
        emails=(Email(address="a@example.org", type=EmailType.HOME, verified=True, verification_date=T),),
        addresses=(full_address(),),
        age=30,
        age_assertion_discrepancy=False,
        date_of_birth=date(1996, 1, 2),
    )


def full_address() -> Address:
    return Address(
        type=AddressType.HOME,
        address="1 Main St",
        city="Springfield",
        zip_code="12345",
        state="VA",
        non_usa_state="n/a",
        country="US",
    )


def full_contact() -> ContactPerson:
    return ContactPerson(
        first_name="Lee",
        last_name="Officer",
        phones=(Phone(number="5550101"),),
        emails=(Email(address="lee@example.gov"),),
        addresses=(full_address(),),
    )


def ip_event() -> IpCaptureEvent:
    return IpCaptureEvent(
        ip_address="2001:db8::1", event_name=EventName.UPLOAD, date_time=T, possible_proxy=False, port=443
    )


def device() -> DeviceId:
    return DeviceId(id_type="IMEI", id_value="490154203237518", event_name=EventName.LOGIN, date_time=T)


def location() -> EstimatedLocation:
    return EstimatedLocation(verified=False, timestamp=T, city="Springfield", region="VA", country_code="US")


def full_report() -> Report:
    return Report(
        batched_report=BatchedReport(reason=BatchReason.VIRAL_POTENTIAL_MEME),
        incident_summary=IncidentSummary(
            incident_type=IncidentType.CHILD_PORNOGRAPHY,
            platform="Vigil",
            escalate_to_high_priority="imminent risk",
            report_annotations=ReportAnnotations(
                sextortion=True,
                csam_solicitation=True,
                minor_to_minor_interaction=True,
                spam=True,
                sadistic_online_exploitation=True,
                informational=True,
            ),
            incident_date_time=T,
            incident_date_time_description="time of the first message",
        ),
        internet_details=(
            InternetDetails(chat_im=ChatImIncident(chat_client="Vigil", chat_room_name="room", content="c")),
            InternetDetails(
                web_page=WebPageIncident(urls=("https://vigil.example/u/1",), additional_info="w")
            ),
        ),
        law_enforcement=LawEnforcement(
            flea_country="US",
            agency_name="Agency",
            case_number="C-1",
            officer_contact=full_contact(),
            reported_to_le=True,
            served_legal_process_domestic=False,
            served_legal_process_international=False,
        ),
        reporter=Reporter(
            reporting_person=full_person(),
            contact_person=full_contact(),
            company_template="Vigil",
            terms_of_service="terms",
            legal_url="https://vigil.example/terms",
        ),
        person_or_user_reported=PersonOrUserReported(
            person=full_person(),
            vehicle_description="none",
            esp_identifier="acct_1",
            esp_service="Vigil",
            compromised_account=False,
            screen_name="sn",
            display_names=("d1", "d2"),
            profile_urls=("https://vigil.example/p/1",),
            profile_bio="bio",
            ip_capture_events=(ip_event(), ip_event()),
            device_ids=(device(),),
            third_party_user_reported=False,
            prior_ct_reports=(123, 456),
            group_identifier="g",
            account_temporarily_disabled=True,
            account_permanently_disabled=False,
            estimated_location=location(),
            all_emails_reported=True,
            additional_info="suspect",
        ),
        intended_recipients=(
            IntendedRecipient(
                person=full_person(),
                esp_identifier="acct_2",
                esp_service="Vigil",
                compromised_account=False,
                screen_name="r",
                display_names=("r",),
                profile_urls=("https://vigil.example/p/2",),
                profile_bio="bio",
                ip_capture_events=(ip_event(),),
                device_ids=(device(),),
                prior_ct_reports=(7,),
                group_identifier="g",
                account_temporarily_disabled=False,
                account_permanently_disabled=False,
                estimated_location=location(),
                all_emails_reported=False,
                additional_info="recipient",
            ),
        ),
        victims=(
            Victim(
                person=full_person(),
                esp_identifier="acct_3",
                esp_service="Vigil",
                compromised_account=False,
                screen_name="v",
                display_names=("v",),
                profile_urls=("https://vigil.example/p/3",),
                profile_bio="bio",
                ip_capture_events=(ip_event(),),
                device_ids=(device(),),
                school_name="School",
                prior_ct_reports=(8,),
                estimated_location=location(),
                all_emails_reported=False,
                additional_info="victim",
            ),
            Victim(person=Person(age=12)),
        ),
        additional_info="report",
    )


def full_file_details() -> FileDetails:
    return FileDetails(
        report_id=1000001,
        file_id="5f3a0c9e2b7d4e11a6c8f0b2d4e6a8c1",
        original_file_name="IMG_0412.jpg",
        uploaded_to_esp_timestamp=T,
        location_of_file="https://vigil.example/blob/1",
        file_viewed_by_esp=True,
        exif_viewed_by_esp=True,
        publicly_available=False,
        file_relevance=FileRelevance.REPORTED,
        file_annotations=FileAnnotations(**{f.name: True for f in dataclasses.fields(FileAnnotations)}),
        industry_classification=IndustryClassification.B2,
        original_file_hashes=hashes_of(b"image bytes", pdq="f" * 64),
        ip_capture_event=ip_event(),
        device_ids=(device(),),
        details=(Details(type=DetailsType.EXIF, pairs=(NameValuePair(name="Model", value="X"),)),),
        additional_info=("one", "two"),
    )


# -- order ---------------------------------------------------------------------------------------------------


def test_spec_minimal_report_is_produced_element_for_element() -> None:
    produced = _parse(report_xml(minimal_report(), now=NOW))
    assert _shape(produced) == _shape(_parse(SPEC_MINIMAL_REPORT.encode()))


def test_document_is_utf8_with_declaration() -> None:
    document = report_xml(minimal_report(), now=NOW)
    assert document.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")


def _report_tree() -> ET.Element:
    return _parse(report_xml(full_report(), now=NOW))


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (".", REPORT),
        ("incidentSummary", INCIDENT_SUMMARY),
        ("incidentSummary/reportAnnotations", REPORT_ANNOTATIONS),
        ("lawEnforcement", LAW_ENFORCEMENT),
        ("lawEnforcement/officerContact", CONTACT),
        ("reporter", REPORTER),
        ("reporter/reportingPerson", PERSON),
        ("reporter/reportingPerson/address", ADDRESS),
        ("reporter/contactPerson", CONTACT),
        ("personOrUserReported", SUSPECT),
        ("personOrUserReported/personOrUserReportedPerson", PERSON),
        ("personOrUserReported/ipCaptureEvent", IP_CAPTURE),
        ("personOrUserReported/deviceId", DEVICE),
        ("personOrUserReported/estimatedLocation", LOCATION),
        ("intendedRecipient", RECIPIENT),
        ("victim", VICTIM),
        ("internetDetails/chatImIncident", ["chatClient", "chatRoomName", "content"]),
    ],
)
def test_every_optional_report_element_sits_in_its_schema_position(path: str, expected: list[str]) -> None:
    element = _report_tree().find(path)
    assert element is not None
    assert _tags(element) == expected


def test_full_report_attributes_and_repeats() -> None:
    tree = _report_tree()
    batched = tree.find("batchedReport")
    assert batched is not None and batched.attrib == {"reason": "VIRAL_POTENTIAL_MEME"}
    assert [c.tag for c in tree.findall("internetDetails/*")] == ["chatImIncident", "webPageIncident"]
    assert [e.text for e in tree.findall("personOrUserReported/priorCTReports")] == ["123", "456"]
    assert len(tree.findall("personOrUserReported/ipCaptureEvent")) == 2
    assert len(tree.findall("victim")) == 2
    law = tree.find("lawEnforcement")
    assert law is not None and law.attrib == {"fleaCountry": "US"}
    email = tree.find("reporter/reportingPerson/email")
    assert email is not None and email.text == "a@example.org"
    assert email.attrib == {"type": "Home", "verified": "true", "verificationDate": "2026-11-29T21:14:03Z"}
    phone = tree.find("reporter/reportingPerson/phone")
    assert phone is not None and phone.attrib == {
        "type": "Mobile",
        "countryCallingCode": "+1",
        "extension": "12",
    }
    assert tree.findtext("reporter/reportingPerson/dateOfBirth") == "1996-01-02"
    assert tree.findtext("personOrUserReported/ipCaptureEvent/possibleProxy") == "false"


def test_every_optional_file_details_element_sits_in_its_schema_position() -> None:
    tree = _parse(file_details_xml(full_file_details()))
    assert tree.tag == "fileDetails"
    assert _tags(tree) == FILE_DETAILS
    annotations = tree.find("fileAnnotations")
    assert annotations is not None and _tags(annotations) == FILE_ANNOTATIONS
    assert all(len(a) == 0 and not a.text for a in annotations)
    hashes = [(h.get("hashType"), h.text) for h in tree.findall("originalFileHash")]
    assert [t for t, _ in hashes] == ["PDQ", "SHA256", "MD5"]
    details = tree.find("details")
    assert details is not None and details.attrib == {"type": "EXIF"}
    assert _tags(details) == ["nameValuePair"]
    pair = details.find("nameValuePair")
    assert pair is not None and _tags(pair) == ["name", "value"]


def test_spec_file_details_example_order() -> None:
    details = FileDetails(
        additional_info=("Reported by the recipient via a franking-verified user report.",),
        original_file_hashes=(
            OriginalFileHash(hash_type="SHA256", value="a" * 64),
            OriginalFileHash(hash_type="PDQ", value="b" * 64),
        ),
        industry_classification=IndustryClassification.B2,
        file_relevance=FileRelevance.REPORTED,
        publicly_available=False,
        file_viewed_by_esp=True,
        original_file_name="IMG_0412.jpg",
        file_id="5f3a0c9e2b7d4e11a6c8f0b2d4e6a8c1",
        report_id=1000001,
    )
    assert _tags(_parse(file_details_xml(details))) == [
        "reportId", "fileId", "originalFileName", "fileViewedByEsp", "publiclyAvailable", "fileRelevance",
        "industryClassification", "originalFileHash", "additionalInfo",
    ]  # fmt: skip


def test_order_does_not_depend_on_the_callers_argument_order() -> None:
    kwargs = {
        "incident_date_time_description": "d",
        "incident_date_time": T,
        "report_annotations": ReportAnnotations(spam=True),
        "escalate_to_high_priority": "e",
        "platform": "p",
        "incident_type": IncidentType.CHILD_SEX_TRAFFICKING,
    }
    forward = IncidentSummary(**kwargs)  # type: ignore[arg-type]
    backward = IncidentSummary(**dict(reversed(list(kwargs.items()))))  # type: ignore[arg-type]
    assert ET.tostring(forward.to_element("x")) == ET.tostring(backward.to_element("x"))
    assert _tags(forward.to_element("x")) == INCIDENT_SUMMARY


def test_ipcapture_before_classification_cannot_be_produced() -> None:
    """Coop #887: fileDetails with ipCaptureEvent before industryClassification was rejected with 4100."""
    tags = _tags(_parse(file_details_xml(full_file_details())))
    assert (
        tags.index("industryClassification") < tags.index("originalFileHash") < tags.index("ipCaptureEvent")
    )


# -- enumerations --------------------------------------------------------------------------------------------


SPEC_INCIDENT_TYPES = [
    "Child Pornography (possession, manufacture, and distribution)",
    "Child Sex Trafficking",
    "Child Sex Tourism",
    "Child Sexual Molestation",
    "Misleading Domain Name",
    "Misleading Words or Digital Images on the Internet",
    "Online Enticement of Children for Sexual Acts",
    "Unsolicited Obscene Material Sent to a Child",
]


def test_incident_types_are_exactly_the_spec_list() -> None:
    assert [t.value for t in IncidentType] == SPEC_INCIDENT_TYPES


@pytest.mark.parametrize("value", SPEC_INCIDENT_TYPES)
def test_each_incident_type_string_is_accepted_verbatim(value: str) -> None:
    summary = IncidentSummary(incident_type=value, incident_date_time=T)  # type: ignore[arg-type]
    assert summary.to_element("s").findtext("incidentType") == value


@pytest.mark.parametrize(
    "value", ["Sextortion", "child sex trafficking", "Child Pornography", "", "Child Sex Trafficking "]
)
def test_an_unknown_incident_type_is_refused(value: str) -> None:
    with pytest.raises(CyberTiplineDocumentError) as caught:
        IncidentSummary(incident_type=value, incident_date_time=T)  # type: ignore[arg-type]
    assert caught.value.field == "IncidentSummary.incidentType"


def _file(**overrides: object) -> FileDetails:
    fields: dict[str, object] = {"report_id": 1, "file_id": "f", "file_viewed_by_esp": False}
    fields.update(overrides)
    return FileDetails(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["A1", "A2", "B1", "B2"])
def test_industry_classifications_accepted(value: str) -> None:
    tree = _parse(file_details_xml(_file(industry_classification=value)))
    assert tree.findtext("industryClassification") == value


@pytest.mark.parametrize(
    ("factory", "field"),
    [
        (lambda: _file(industry_classification="C1"), "FileDetails.industryClassification"),
        (lambda: _file(industry_classification="a1"), "FileDetails.industryClassification"),
        (lambda: _file(file_relevance="Supplemental"), "FileDetails.fileRelevance"),
        (lambda: IpCaptureEvent(ip_address="192.0.2.1", event_name="Logout"), "IpCaptureEvent.eventName"),
        (lambda: DeviceId(id_type="IMEI", id_value="1", event_name="login"), "DeviceId.eventName"),
        (lambda: Email(address="a@b.c", type="Personal"), "Email.type"),
        (lambda: Phone(number="1", type="Cell"), "Phone.type"),
        (lambda: Address(type="Office"), "Address.type"),
        (lambda: Details(type="XMP", pairs=(NameValuePair(name="a", value="b"),)), "Details.type"),
        (lambda: BatchedReport(reason="MEME"), "BatchedReport.reason"),
        (lambda: Phone(number="1", country_calling_code="1"), "Phone.countryCallingCode"),
        (lambda: Phone(number="1", extension="12a"), "Phone.extension"),
        (lambda: EstimatedLocation(country_code="USA"), "EstimatedLocation.countryCode"),
        (lambda: IpCaptureEvent(ip_address="999.0.0.1"), "IpCaptureEvent.ipAddress"),
        (lambda: _file(file_viewed_by_esp="yes"), "FileDetails.fileViewedByEsp"),
        (lambda: _file(report_id=0), "FileDetails.reportId"),
        (lambda: _file(file_id="  "), "FileDetails.fileId"),
        (lambda: Person(age=151), "Person.age"),
        (lambda: Person(age=-1), "Person.age"),
        (lambda: IpCaptureEvent(ip_address="192.0.2.1", port=0), "IpCaptureEvent.port"),
        (lambda: IpCaptureEvent(ip_address="192.0.2.1", port=65536), "IpCaptureEvent.port"),
        (lambda: PersonOrUserReported(prior_ct_reports=(0,)), "PersonOrUserReported.priorCTReports"),
        (lambda: Reporter(reporting_person=Person(), legal_url="https://x.example/a b"), "Reporter.legalURL"),
        (lambda: Reporter(reporting_person=Person(), legal_url="javascript:alert(1)"), "Reporter.legalURL"),
        (lambda: _file(location_of_file="https://x.example/\n"), "FileDetails.locationOfFile"),
        (lambda: OriginalFileHash(hash_type="MD5", value="0" * 31), "OriginalFileHash.originalFileHash"),
        (lambda: OriginalFileHash(hash_type="PDQ", value="z" * 64), "OriginalFileHash.originalFileHash"),
    ],
)
def test_enumerations_and_ranges_are_enforced(factory: Callable[[], object], field: str) -> None:
    with pytest.raises(CyberTiplineDocumentError) as caught:
        factory()
    assert caught.value.field == field
    assert isinstance(caught.value, ValidationError) and isinstance(caught.value, VigilError)


def test_boundary_values_are_accepted() -> None:
    Person(age=0)
    Person(age=150)
    IpCaptureEvent(ip_address="192.0.2.1", port=1)
    IpCaptureEvent(ip_address="192.0.2.1", port=65535)
    Phone(number="1", country_calling_code="+353", extension="1234567890")


# -- lengths -------------------------------------------------------------------------------------------------


def _summary(**overrides: object) -> IncidentSummary:
    fields: dict[str, object] = {"incident_type": IncidentType.CHILD_SEX_TOURISM, "incident_date_time": T}
    fields.update(overrides)
    return IncidentSummary(**fields)  # type: ignore[arg-type]


def _url(n: int) -> str:
    prefix = "https://vigil.example/"
    return prefix + "a" * (n - len(prefix))


LENGTHS: list[tuple[str, int, Callable[[str], object]]] = [
    ("IncidentSummary.platform", 256, lambda s: _summary(platform=s)),
    ("IncidentSummary.escalateToHighPriority", 3000, lambda s: _summary(escalate_to_high_priority=s)),
    (
        "IncidentSummary.incidentDateTimeDescription",
        3000,
        lambda s: _summary(incident_date_time_description=s),
    ),
    ("ChatImIncident.chatClient", 255, lambda s: ChatImIncident(chat_client=s)),
    ("ChatImIncident.chatRoomName", 255, lambda s: ChatImIncident(chat_room_name=s)),
    ("LawEnforcement.agencyName", 255, lambda s: LawEnforcement(agency_name=s)),
    ("LawEnforcement.caseNumber", 100, lambda s: LawEnforcement(agency_name="a", case_number=s)),
    ("Reporter.termsOfService", 3000, lambda s: Reporter(reporting_person=Person(), terms_of_service=s)),
    ("Person.firstName", 100, lambda s: Person(first_name=s)),
    ("Person.lastName", 100, lambda s: Person(last_name=s)),
    ("Email.text", 255, lambda s: Email(address=s)),
    ("Phone.text", 50, lambda s: Phone(number=s)),
    ("Address.address", 255, lambda s: Address(address=s)),
    ("Address.city", 100, lambda s: Address(city=s)),
    ("Address.zipCode", 20, lambda s: Address(zip_code=s)),
    ("Address.nonUsaState", 100, lambda s: Address(non_usa_state=s)),
    ("PersonOrUserReported.vehicleDescription", 300, lambda s: PersonOrUserReported(vehicle_description=s)),
    ("PersonOrUserReported.espIdentifier", 255, lambda s: PersonOrUserReported(esp_identifier=s)),
    ("PersonOrUserReported.espService", 100, lambda s: PersonOrUserReported(esp_service=s)),
    ("PersonOrUserReported.screenName", 256, lambda s: PersonOrUserReported(screen_name=s)),
    ("PersonOrUserReported.groupIdentifier", 255, lambda s: PersonOrUserReported(group_identifier=s)),
    ("Victim.schoolName", 255, lambda s: Victim(person=Person(), school_name=s)),
    ("DeviceId.idType", 255, lambda s: DeviceId(id_type=s, id_value="v")),
    ("DeviceId.idValue", 2083, lambda s: DeviceId(id_type="t", id_value=s)),
    ("FileDetails.originalFileName", 2056, lambda s: _file(original_file_name=s)),
    ("OriginalFileHash.hashType", 64, lambda s: OriginalFileHash(hash_type=s, value="x")),
    ("NameValuePair.name", 64, lambda s: NameValuePair(name=s, value="v")),
]
URL_LENGTHS: list[tuple[str, int, Callable[[str], object]]] = [
    ("Reporter.legalURL", 2083, lambda s: Reporter(reporting_person=Person(), legal_url=s)),
    ("FileDetails.locationOfFile", 2083, lambda s: _file(location_of_file=s)),
]


@pytest.mark.parametrize(("field", "limit", "factory"), LENGTHS, ids=[f for f, _, _ in LENGTHS])
def test_text_length_limits(field: str, limit: int, factory: Callable[[str], object]) -> None:
    factory("x" * limit)
    with pytest.raises(CyberTiplineDocumentError) as caught:
        factory("x" * (limit + 1))
    assert caught.value.field == field
    assert str(limit) in str(caught.value)


@pytest.mark.parametrize(("field", "limit", "factory"), URL_LENGTHS, ids=[f for f, _, _ in URL_LENGTHS])
def test_url_length_limits(field: str, limit: int, factory: Callable[[str], object]) -> None:
    factory(_url(limit))
    with pytest.raises(CyberTiplineDocumentError) as caught:
        factory(_url(limit + 1))
    assert caught.value.field == field


# -- required elements and cross-field rules ----------------------------------------------------------------


def test_required_elements() -> None:
    with pytest.raises(CyberTiplineDocumentError) as caught:
        Reporter(reporting_person=None)  # type: ignore[arg-type]
    assert caught.value.field == "Reporter.reportingPerson"
    with pytest.raises(CyberTiplineDocumentError) as caught:
        Victim(person=None)  # type: ignore[arg-type]
    assert caught.value.field == "Victim.victimPerson"
    with pytest.raises(CyberTiplineDocumentError) as caught:
        Details(type=DetailsType.HASH, pairs=())
    assert caught.value.field == "Details.nameValuePair"
    with pytest.raises(CyberTiplineDocumentError) as caught:
        dataclasses.replace(minimal_report(), reporter=None)  # type: ignore[arg-type]
    assert caught.value.field == "Report.reporter"


def test_file_viewed_by_esp_must_be_given_explicitly() -> None:
    with pytest.raises(TypeError):
        FileDetails(report_id=1, file_id="f")  # type: ignore[call-arg]
    unviewed = _parse(file_details_xml(_file(file_viewed_by_esp=False)))
    assert unviewed.findtext("fileViewedByEsp") == "false"


@pytest.mark.parametrize("count", [0, 2])
def test_internet_details_holds_exactly_one_incident_kind(count: int) -> None:
    kinds = {"chat_im": ChatImIncident(chat_client="Vigil"), "web_page": WebPageIncident()}
    with pytest.raises(CyberTiplineDocumentError) as caught:
        InternetDetails(**dict(list(kinds.items())[:count]))  # type: ignore[arg-type]
    assert caught.value.field == "InternetDetails"


def test_exif_viewed_requires_file_viewed() -> None:
    with pytest.raises(CyberTiplineDocumentError) as caught:
        _file(file_viewed_by_esp=False, exif_viewed_by_esp=True)
    assert caught.value.field == "FileDetails.exifViewedByEsp"
    _file(file_viewed_by_esp=True, exif_viewed_by_esp=True)


def test_supplemental_files_are_not_classified_nor_memes() -> None:
    with pytest.raises(CyberTiplineDocumentError) as caught:
        _file(file_relevance=FileRelevance.SUPPLEMENTAL_REPORTED, industry_classification="A1")
    assert caught.value.field == "FileDetails.industryClassification"
    with pytest.raises(CyberTiplineDocumentError) as caught:
        _file(
            file_relevance=FileRelevance.SUPPLEMENTAL_REPORTED,
            file_annotations=FileAnnotations(potential_meme=True),
        )
    assert caught.value.field == "FileDetails.potentialMeme"
    _file(file_relevance=FileRelevance.SUPPLEMENTAL_REPORTED, file_annotations=FileAnnotations(viral=True))
    _file(file_relevance=FileRelevance.REPORTED, industry_classification="A1")


# -- dates ---------------------------------------------------------------------------------------------------


def test_a_future_incident_date_is_clamped_to_before_now() -> None:
    future = dataclasses.replace(
        minimal_report(), incident_summary=_summary(incident_date_time=NOW + timedelta(days=3))
    )
    tree = _parse(report_xml(future, now=NOW))
    assert tree.findtext("incidentSummary/incidentDateTime") == "2026-11-30T11:59:59Z"
    assert future.incident_summary.incident_date_time == NOW + timedelta(days=3)  # the model is unchanged


def test_clamp_to_past() -> None:
    assert clamp_to_past(T, now=NOW) == T
    assert clamp_to_past(NOW, now=NOW) == NOW - timedelta(seconds=1)
    assert clamp_to_past(NOW + timedelta(microseconds=1), now=NOW) == NOW - timedelta(seconds=1)
    with pytest.raises(CyberTiplineDocumentError):
        clamp_to_past(T, now=datetime(2026, 11, 30))  # a naive clock


def test_past_incident_date_is_kept_and_offsets_become_utc() -> None:
    local = datetime(2026, 11, 29, 23, 14, 3, tzinfo=timezone(timedelta(hours=2)))
    report = dataclasses.replace(minimal_report(), incident_summary=_summary(incident_date_time=local))
    assert (
        _parse(report_xml(report, now=NOW)).findtext("incidentSummary/incidentDateTime")
        == "2026-11-29T21:14:03Z"
    )


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(CyberTiplineDocumentError) as caught:
        _summary(incident_date_time=datetime(2026, 11, 29, 21, 14, 3))
    assert caught.value.field == "IncidentSummary.incidentDateTime"


# -- escaping ------------------------------------------------------------------------------------------------

NASTY = "a < b && c > d \"quoted\" 'single' ]]> <!-- x --> <report/> &amp;"


def test_xml_special_characters_are_escaped_in_text_and_attributes() -> None:
    report = dataclasses.replace(
        minimal_report(),
        additional_info=NASTY,
        law_enforcement=LawEnforcement(flea_country=NASTY[:100], agency_name=NASTY),
    )
    document = report_xml(report, now=NOW)
    assert b"<report/>" not in document and b"<!--" not in document
    tree = _parse(document)
    assert tree.findtext("additionalInfo") == NASTY
    assert tree.findtext("lawEnforcement/agencyName") == NASTY
    law = tree.find("lawEnforcement")
    assert law is not None and law.get("fleaCountry") == NASTY[:100]
    assert [c.tag for c in tree] == ["incidentSummary", "internetDetails", "lawEnforcement", "reporter",
                                     "personOrUserReported", "victim", "additionalInfo"]  # fmt: skip

    details = _file(original_file_name=NASTY, additional_info=(NASTY,))
    file_tree = _parse(file_details_xml(details))
    assert file_tree.findtext("originalFileName") == NASTY
    assert file_tree.findtext("additionalInfo") == NASTY


def test_non_ascii_text_round_trips_as_utf8() -> None:
    report = dataclasses.replace(minimal_report(), additional_info="Zoë — 日本語 🙂")
    document = report_xml(report, now=NOW)
    assert "Zoë — 日本語 🙂".encode() in document
    assert _parse(document).findtext("additionalInfo") == "Zoë — 日本語 🙂"


@pytest.mark.parametrize("bad", ["nul\x00", "bell\x07", "esc\x1b[0m", "\ufffe"])
def test_characters_xml_cannot_carry_are_refused(bad: str) -> None:
    with pytest.raises(CyberTiplineDocumentError) as caught:
        ChatImIncident(content=bad)
    assert caught.value.field == "ChatImIncident.content"


# -- hash-matched files --------------------------------------------------------------------------------------


def test_hashes_of_gives_pdq_sha256_and_md5() -> None:
    content = b"\x89PNG fake image"
    pdq = "AB" * 32
    hashes = hashes_of(content, pdq=pdq)
    assert [(h.hash_type, h.value) for h in hashes] == [
        ("PDQ", pdq.lower()),
        ("SHA256", hashlib.sha256(content).hexdigest()),
        ("MD5", hashlib.md5(content).hexdigest()),
    ]
    assert [h.hash_type for h in hashes_of(content)] == ["SHA256", "MD5"]


def test_a_hash_matched_unviewed_file_carries_hashes_and_match_facts() -> None:
    facts = HashMatchFacts(
        list_name="vigil-demo", list_version=3, matched_hash="c" * 64, distance=12, threshold=31
    )
    details = FileDetails(
        report_id=5,
        file_id="f1",
        file_viewed_by_esp=False,
        file_relevance=FileRelevance.REPORTED,
        original_file_hashes=hashes_of(b"bytes", pdq="d" * 64),
        additional_info=(facts.describe(),),
    )
    tree = _parse(file_details_xml(details))
    assert tree.findtext("fileViewedByEsp") == "false"
    assert tree.find("originalFileHash[@hashType='PDQ']") is not None
    info = tree.findtext("additionalInfo")
    assert (
        info is not None and "distance 12" in info and "c" * 64 in info and "'vigil-demo' version 3" in info
    )


def test_match_facts_refuse_a_non_match() -> None:
    with pytest.raises(CyberTiplineDocumentError):
        HashMatchFacts(list_name="l", list_version=1, matched_hash="c" * 64, distance=40, threshold=31)
    with pytest.raises(CyberTiplineDocumentError):
        HashMatchFacts(list_name="l", list_version=1, matched_hash="c" * 63, distance=1, threshold=31)

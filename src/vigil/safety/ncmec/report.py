"""The `<report>` document (body of `POST /submit`), spec §4. Field order = XSD sequence order."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from vigil.safety.ncmec._schema import Element, document_bytes, slot
from vigil.safety.ncmec.enums import BatchReason, IncidentType
from vigil.safety.ncmec.errors import CyberTiplineDocumentError
from vigil.safety.ncmec.types import (
    Address,
    ContactPerson,
    DeviceId,
    Email,
    EstimatedLocation,
    IpCaptureEvent,
    Person,
    Phone,
)

__all__ = [
    "BatchedReport",
    "CellPhoneIncident",
    "ChatImIncident",
    "EmailIncident",
    "IncidentSummary",
    "IntendedRecipient",
    "InternetDetails",
    "LawEnforcement",
    "NewsgroupIncident",
    "NonInternetIncident",
    "OnlineGamingIncident",
    "Peer2PeerIncident",
    "PersonOrUserReported",
    "Report",
    "ReportAnnotations",
    "Reporter",
    "Victim",
    "WebPageIncident",
    "clamp_to_past",
    "report_xml",
]

_URL_MAX = 2083


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchedReport(Element):
    reason: BatchReason = field(
        metadata=slot("reason", "enum", attribute=True, required=True, enum=BatchReason)
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportAnnotations(Element):
    """Presence flags, written as empty elements in this order."""

    sextortion: bool = field(default=False, metadata=slot("sextortion", "flag"))
    csam_solicitation: bool = field(default=False, metadata=slot("csamSolicitation", "flag"))
    minor_to_minor_interaction: bool = field(default=False, metadata=slot("minorToMinorInteraction", "flag"))
    spam: bool = field(default=False, metadata=slot("spam", "flag"))
    sadistic_online_exploitation: bool = field(
        default=False, metadata=slot("sadisticOnlineExploitation", "flag")
    )
    informational: bool = field(default=False, metadata=slot("informational", "flag"))


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentSummary(Element):
    incident_type: IncidentType = field(
        metadata=slot("incidentType", "enum", required=True, enum=IncidentType)
    )
    platform: str | None = field(default=None, metadata=slot("platform", "str", max_length=256))
    escalate_to_high_priority: str | None = field(
        default=None, metadata=slot("escalateToHighPriority", "str", max_length=3000)
    )
    report_annotations: ReportAnnotations | None = field(
        default=None, metadata=slot("reportAnnotations", "element", element=ReportAnnotations)
    )
    incident_date_time: datetime = field(metadata=slot("incidentDateTime", "datetime", required=True))
    incident_date_time_description: str | None = field(
        default=None, metadata=slot("incidentDateTimeDescription", "str", max_length=3000)
    )


# -- internetDetails (§4.3): each holds exactly one incident kind -------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class WebPageIncident(Element):
    urls: tuple[str, ...] = field(default=(), metadata=slot("url", "url", repeated=True, max_length=_URL_MAX))
    additional_info: str | None = field(default=None, metadata=slot("additionalInfo", "str"))


@dataclass(frozen=True, slots=True, kw_only=True)
class EmailIncident(Element):
    email_addresses: tuple[Email, ...] = field(
        default=(), metadata=slot("emailAddress", "element", repeated=True, element=Email)
    )
    content: str | None = field(default=None, metadata=slot("content", "str"))
    additional_info: str | None = field(default=None, metadata=slot("additionalInfo", "str"))


@dataclass(frozen=True, slots=True, kw_only=True)
class NewsgroupIncident(Element):
    name: str | None = field(default=None, metadata=slot("name", "str", max_length=255))
    email_addresses: tuple[Email, ...] = field(
        default=(), metadata=slot("emailAddress", "element", repeated=True, element=Email)
    )
    content: str | None = field(default=None, metadata=slot("content", "str"))
    additional_info: str | None = field(default=None, metadata=slot("additionalInfo", "str"))


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatImIncident(Element):
    chat_client: str | None = field(default=None, metadata=slot("chatClient", "str", max_length=255))
    chat_room_name: str | None = field(default=None, metadata=slot("chatRoomName", "str", max_length=255))
    content: str | None = field(default=None, metadata=slot("content", "str"))
    additional_info: str | None = field(default=None, metadata=slot("additionalInfo", "str"))


@dataclass(frozen=True, slots=True, kw_only=True)
class OnlineGamingIncident(Element):
    game_name: str | None = field(default=None, metadata=slot("gameName", "str", max_length=255))
    console: str | None = field(default=None, metadata=slot("console", "str", max_length=255))
    content: str | None = field(default=None, metadata=slot("content", "str"))
    additional_info: str | None = field(default=None, metadata=slot("additionalInfo", "str"))


@dataclass(frozen=True, slots=True, kw_only=True)
class CellPhoneIncident(Element):
    phone_number: Phone | None = field(default=None, metadata=slot("phoneNumber", "element", element=Phone))
    latitude: float | None = field(default=None, metadata=slot("latitude", "float", minimum=-90, maximum=90))
    longitude: float | None = field(
        default=None, metadata=slot("longitude", "float", minimum=-180, maximum=180)
    )
    additional_info: str | None = field(default=None, metadata=slot("additionalInfo", "str"))


@dataclass(frozen=True, slots=True, kw_only=True)
class NonInternetIncident(Element):
    location_name: str | None = field(default=None, metadata=slot("locationName", "str", max_length=255))
    incident_addresses: tuple[Address, ...] = field(
        default=(), metadata=slot("incidentAddress", "element", repeated=True, element=Address)
    )
    additional_info: str | None = field(default=None, metadata=slot("additionalInfo", "str"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Peer2PeerIncident(Element):
    client: str | None = field(default=None, metadata=slot("client", "str", max_length=255))
    ip_capture_events: tuple[IpCaptureEvent, ...] = field(
        default=(), metadata=slot("ipCaptureEvent", "element", repeated=True, element=IpCaptureEvent)
    )
    file_names: str | None = field(default=None, metadata=slot("fileNames", "str"))
    additional_info: str | None = field(default=None, metadata=slot("additionalInfo", "str"))


@dataclass(frozen=True, slots=True, kw_only=True)
class InternetDetails(Element):
    """One `<internetDetails>`; exactly one of the fields is set (a choice in the XSD)."""

    web_page: WebPageIncident | None = field(
        default=None, metadata=slot("webPageIncident", "element", element=WebPageIncident)
    )
    email: EmailIncident | None = field(
        default=None, metadata=slot("emailIncident", "element", element=EmailIncident)
    )
    newsgroup: NewsgroupIncident | None = field(
        default=None, metadata=slot("newsgroupIncident", "element", element=NewsgroupIncident)
    )
    chat_im: ChatImIncident | None = field(
        default=None, metadata=slot("chatImIncident", "element", element=ChatImIncident)
    )
    online_gaming: OnlineGamingIncident | None = field(
        default=None, metadata=slot("onlineGamingIncident", "element", element=OnlineGamingIncident)
    )
    cell_phone: CellPhoneIncident | None = field(
        default=None, metadata=slot("cellPhoneIncident", "element", element=CellPhoneIncident)
    )
    non_internet: NonInternetIncident | None = field(
        default=None, metadata=slot("nonInternetIncident", "element", element=NonInternetIncident)
    )
    peer2peer: Peer2PeerIncident | None = field(
        default=None, metadata=slot("peer2peerIncident", "element", element=Peer2PeerIncident)
    )

    def _check(self) -> None:
        present = [f.name for f in dataclasses.fields(self) if getattr(self, f.name) is not None]
        if len(present) != 1:
            raise CyberTiplineDocumentError(
                "InternetDetails", f"exactly one incident kind is required, got {len(present)}"
            )


# -- the people --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class LawEnforcement(Element):
    flea_country: str | None = field(
        default=None, metadata=slot("fleaCountry", "str", attribute=True, max_length=100)
    )
    agency_name: str = field(metadata=slot("agencyName", "str", required=True, max_length=255))
    case_number: str | None = field(default=None, metadata=slot("caseNumber", "str", max_length=100))
    officer_contact: ContactPerson | None = field(
        default=None, metadata=slot("officerContact", "element", element=ContactPerson)
    )
    reported_to_le: bool | None = field(default=None, metadata=slot("reportedToLe", "bool"))
    served_legal_process_domestic: bool | None = field(
        default=None, metadata=slot("servedLegalProcessDomestic", "bool")
    )
    served_legal_process_international: bool | None = field(
        default=None, metadata=slot("servedLegalProcessInternational", "bool")
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Reporter(Element):
    reporting_person: Person = field(
        metadata=slot("reportingPerson", "element", required=True, element=Person)
    )
    contact_person: ContactPerson | None = field(
        default=None, metadata=slot("contactPerson", "element", element=ContactPerson)
    )
    company_template: str | None = field(
        default=None, metadata=slot("companyTemplate", "str", max_length=255)
    )
    terms_of_service: str | None = field(
        default=None, metadata=slot("termsOfService", "str", max_length=3000)
    )
    legal_url: str | None = field(default=None, metadata=slot("legalURL", "url", max_length=_URL_MAX))


@dataclass(frozen=True, slots=True, kw_only=True)
class PersonOrUserReported(Element):
    """The suspect (§4.6)."""

    person: Person | None = field(
        default=None, metadata=slot("personOrUserReportedPerson", "element", element=Person)
    )
    vehicle_description: str | None = field(
        default=None, metadata=slot("vehicleDescription", "str", max_length=300)
    )
    esp_identifier: str | None = field(default=None, metadata=slot("espIdentifier", "str", max_length=255))
    esp_service: str | None = field(default=None, metadata=slot("espService", "str", max_length=100))
    compromised_account: bool | None = field(default=None, metadata=slot("compromisedAccount", "bool"))
    screen_name: str | None = field(default=None, metadata=slot("screenName", "str", max_length=256))
    display_names: tuple[str, ...] = field(
        default=(), metadata=slot("displayName", "str", repeated=True, max_length=256)
    )
    profile_urls: tuple[str, ...] = field(
        default=(), metadata=slot("profileUrl", "url", repeated=True, max_length=_URL_MAX)
    )
    profile_bio: str | None = field(default=None, metadata=slot("profileBio", "str"))
    ip_capture_events: tuple[IpCaptureEvent, ...] = field(
        default=(), metadata=slot("ipCaptureEvent", "element", repeated=True, element=IpCaptureEvent)
    )
    device_ids: tuple[DeviceId, ...] = field(
        default=(), metadata=slot("deviceId", "element", repeated=True, element=DeviceId)
    )
    third_party_user_reported: bool | None = field(
        default=None, metadata=slot("thirdPartyUserReported", "bool")
    )
    prior_ct_reports: tuple[int, ...] = field(
        default=(), metadata=slot("priorCTReports", "int", repeated=True, minimum=1)
    )
    group_identifier: str | None = field(
        default=None, metadata=slot("groupIdentifier", "str", max_length=255)
    )
    account_temporarily_disabled: bool | None = field(
        default=None, metadata=slot("accountTemporarilyDisabled", "bool")
    )
    account_permanently_disabled: bool | None = field(
        default=None, metadata=slot("accountPermanentlyDisabled", "bool")
    )
    estimated_location: EstimatedLocation | None = field(
        default=None, metadata=slot("estimatedLocation", "element", element=EstimatedLocation)
    )
    all_emails_reported: bool | None = field(default=None, metadata=slot("allEmailsReported", "bool"))
    additional_info: str | None = field(default=None, metadata=slot("additionalInfo", "str"))


@dataclass(frozen=True, slots=True, kw_only=True)
class IntendedRecipient(Element):
    """§4.7; the place of the two `account…Disabled` flags is inferred by analogy with §4.6."""

    person: Person | None = field(
        default=None, metadata=slot("intendedRecipientPerson", "element", element=Person)
    )
    esp_identifier: str | None = field(default=None, metadata=slot("espIdentifier", "str", max_length=255))
    esp_service: str | None = field(default=None, metadata=slot("espService", "str", max_length=100))
    compromised_account: bool | None = field(default=None, metadata=slot("compromisedAccount", "bool"))
    screen_name: str | None = field(default=None, metadata=slot("screenName", "str", max_length=256))
    display_names: tuple[str, ...] = field(
        default=(), metadata=slot("displayName", "str", repeated=True, max_length=256)
    )
    profile_urls: tuple[str, ...] = field(
        default=(), metadata=slot("profileUrl", "url", repeated=True, max_length=_URL_MAX)
    )
    profile_bio: str | None = field(default=None, metadata=slot("profileBio", "str"))
    ip_capture_events: tuple[IpCaptureEvent, ...] = field(
        default=(), metadata=slot("ipCaptureEvent", "element", repeated=True, element=IpCaptureEvent)
    )
    device_ids: tuple[DeviceId, ...] = field(
        default=(), metadata=slot("deviceId", "element", repeated=True, element=DeviceId)
    )
    prior_ct_reports: tuple[int, ...] = field(
        default=(), metadata=slot("priorCTReports", "int", repeated=True, minimum=1)
    )
    group_identifier: str | None = field(
        default=None, metadata=slot("groupIdentifier", "str", max_length=255)
    )
    account_temporarily_disabled: bool | None = field(
        default=None, metadata=slot("accountTemporarilyDisabled", "bool")
    )
    account_permanently_disabled: bool | None = field(
        default=None, metadata=slot("accountPermanentlyDisabled", "bool")
    )
    estimated_location: EstimatedLocation | None = field(
        default=None, metadata=slot("estimatedLocation", "element", element=EstimatedLocation)
    )
    all_emails_reported: bool | None = field(default=None, metadata=slot("allEmailsReported", "bool"))
    additional_info: str | None = field(default=None, metadata=slot("additionalInfo", "str"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Victim(Element):
    person: Person = field(metadata=slot("victimPerson", "element", required=True, element=Person))
    esp_identifier: str | None = field(default=None, metadata=slot("espIdentifier", "str", max_length=255))
    esp_service: str | None = field(default=None, metadata=slot("espService", "str", max_length=100))
    compromised_account: bool | None = field(default=None, metadata=slot("compromisedAccount", "bool"))
    screen_name: str | None = field(default=None, metadata=slot("screenName", "str", max_length=256))
    display_names: tuple[str, ...] = field(
        default=(), metadata=slot("displayName", "str", repeated=True, max_length=256)
    )
    profile_urls: tuple[str, ...] = field(
        default=(), metadata=slot("profileUrl", "url", repeated=True, max_length=_URL_MAX)
    )
    profile_bio: str | None = field(default=None, metadata=slot("profileBio", "str"))
    ip_capture_events: tuple[IpCaptureEvent, ...] = field(
        default=(), metadata=slot("ipCaptureEvent", "element", repeated=True, element=IpCaptureEvent)
    )
    device_ids: tuple[DeviceId, ...] = field(
        default=(), metadata=slot("deviceId", "element", repeated=True, element=DeviceId)
    )
    school_name: str | None = field(default=None, metadata=slot("schoolName", "str", max_length=255))
    prior_ct_reports: tuple[int, ...] = field(
        default=(), metadata=slot("priorCTReports", "int", repeated=True, minimum=1)
    )
    estimated_location: EstimatedLocation | None = field(
        default=None, metadata=slot("estimatedLocation", "element", element=EstimatedLocation)
    )
    all_emails_reported: bool | None = field(default=None, metadata=slot("allEmailsReported", "bool"))
    additional_info: str | None = field(default=None, metadata=slot("additionalInfo", "str"))


# -- the report --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Report(Element):
    batched_report: BatchedReport | None = field(
        default=None, metadata=slot("batchedReport", "element", element=BatchedReport)
    )
    incident_summary: IncidentSummary = field(
        metadata=slot("incidentSummary", "element", required=True, element=IncidentSummary)
    )
    internet_details: tuple[InternetDetails, ...] = field(
        default=(), metadata=slot("internetDetails", "element", repeated=True, element=InternetDetails)
    )
    law_enforcement: LawEnforcement | None = field(
        default=None, metadata=slot("lawEnforcement", "element", element=LawEnforcement)
    )
    reporter: Reporter = field(metadata=slot("reporter", "element", required=True, element=Reporter))
    person_or_user_reported: PersonOrUserReported | None = field(
        default=None, metadata=slot("personOrUserReported", "element", element=PersonOrUserReported)
    )
    intended_recipients: tuple[IntendedRecipient, ...] = field(
        default=(), metadata=slot("intendedRecipient", "element", repeated=True, element=IntendedRecipient)
    )
    victims: tuple[Victim, ...] = field(
        default=(), metadata=slot("victim", "element", repeated=True, element=Victim)
    )
    additional_info: str | None = field(default=None, metadata=slot("additionalInfo", "str"))


def clamp_to_past(moment: datetime, *, now: datetime) -> datetime:
    """`moment`, or one second before `now` if it is not already before that (NCMEC rejects a future
    `incidentDateTime`; a skewed device clock or a just-now event must not make the report fail)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise CyberTiplineDocumentError("now", "the clock must carry a time zone")
    latest = now - timedelta(seconds=1)
    return moment if moment <= latest else latest


def report_xml(report: Report, *, now: datetime) -> bytes:
    """The `<report>` document for `/submit`, with `incidentDateTime` clamped to before `now`."""
    summary = report.incident_summary
    clamped = clamp_to_past(summary.incident_date_time, now=now)
    if clamped != summary.incident_date_time:
        report = dataclasses.replace(
            report, incident_summary=dataclasses.replace(summary, incident_date_time=clamped)
        )
    return document_bytes(report.to_element("report"))

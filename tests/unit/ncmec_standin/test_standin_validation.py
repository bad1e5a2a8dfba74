"""The stand-in rejects what NCMEC rejects: each negative fixture of spec §7 is code 4100 (HTTP 400) with a
validator message; malformed XML is 4110; nothing is opened by a refused submit."""

from __future__ import annotations

import httpx
import pytest
from standin_calls import XML, fileinfo, parse, submit, upload

from conftest import MINIMAL_REPORT, PDQ, SHA, FakeClock, file_details

SUMMARY_TYPE = "<incidentType>Online Enticement of Children for Sexual Acts</incidentType>"
SUMMARY_DATE = "<incidentDateTime>2026-11-29T21:14:03Z</incidentDateTime>"
ANNOTATIONS = "<reportAnnotations><sextortion/><csamSolicitation/></reportAnnotations>"
INTERNET = """<internetDetails>
    <chatImIncident><chatClient>Vigil</chatClient></chatImIncident>
  </internetDetails>"""
REPORTER_START = "  <reporter>"
REPORTER_END = "</reporter>\n"


def _reporter_block() -> str:
    start = MINIMAL_REPORT.index(REPORTER_START)
    return MINIMAL_REPORT[start : MINIMAL_REPORT.index(REPORTER_END) + len(REPORTER_END)]


REPORT_CASES = {
    "incidentDateTime before incidentType": (
        MINIMAL_REPORT.replace(SUMMARY_TYPE, "@T")
        .replace(SUMMARY_DATE, SUMMARY_TYPE)
        .replace("@T", SUMMARY_DATE),
        "cvc-complex-type.2.4.a",
    ),
    "reporter before internetDetails": (
        MINIMAL_REPORT.replace(_reporter_block(), "").replace(INTERNET, _reporter_block() + INTERNET),
        "Invalid content was found starting with element 'internetDetails'",
    ),
    "no reporter": (MINIMAL_REPORT.replace(_reporter_block(), ""), "One of '{"),
    "incidentType not in the list": (
        MINIMAL_REPORT.replace("Online Enticement of Children for Sexual Acts", "Sextortion"),
        "cvc-enumeration-valid",
    ),
    "future incidentDateTime": (
        MINIMAL_REPORT.replace("2026-11-29T21:14:03Z", "2026-11-30T12:00:01Z"),
        "in the future",
    ),
    "internetDetails with two incident kinds": (
        MINIMAL_REPORT.replace(
            "<chatImIncident>",
            "<webPageIncident><url>https://x.example/</url></webPageIncident><chatImIncident>",
        ),
        "exactly one of",
    ),
    "escalateToHighPriority over 3000 characters": (
        MINIMAL_REPORT.replace(ANNOTATIONS, f"<escalateToHighPriority>{'x' * 3001}</escalateToHighPriority>"),
        "maxLength '3000'",
    ),
    "no incidentDateTime": (MINIMAL_REPORT.replace(SUMMARY_DATE, ""), "cvc-complex-type.2.4.b"),
    "unknown child": (MINIMAL_REPORT.replace(ANNOTATIONS, "<severity>high</severity>"), "'severity'"),
    "incidentDateTime without a zone offset": (
        MINIMAL_REPORT.replace("2026-11-29T21:14:03Z", "2026-11-29T21:14:03"),
        "dateTime",
    ),
    "URL with whitespace": (
        MINIMAL_REPORT.replace("https://vigil.example/terms", "https://vigil.example/te rms"),
        "'url'",
    ),
    "two personOrUserReported": (
        MINIMAL_REPORT.replace("<victim>", "<personOrUserReported/><victim>"),
        "'personOrUserReported'",
    ),
    "ipCaptureEvent children out of order": (
        MINIMAL_REPORT.replace(
            "<ipAddress>198.51.100.23</ipAddress><eventName>Login</eventName>",
            "<eventName>Login</eventName><ipAddress>198.51.100.23</ipAddress>",
        ),
        "personOrUserReported/ipCaptureEvent",
    ),
    "wrong root": ("<fileDetails><reportId>1</reportId><fileId>a</fileId></fileDetails>", "cvc-elt.1.a"),
}


@pytest.mark.parametrize("case", sorted(REPORT_CASES))
async def test_each_bad_report_is_rejected_with_4100(standin: httpx.AsyncClient, case: str) -> None:
    document, message = REPORT_CASES[case]
    assert document != MINIMAL_REPORT
    answer = await submit(standin, document)
    assert (answer.http_status, answer.code) == (400, 4100), answer.fields
    description = answer.fields["responseDescription"]
    assert description.startswith("Validation failed"), description
    assert message in description, description
    assert "reportId" not in answer.fields
    assert (await standin.get("/_standin/reports")).json()["reports"] == []


async def test_incident_now_is_not_in_the_future(standin: httpx.AsyncClient) -> None:
    answer = await submit(
        standin, MINIMAL_REPORT.replace("2026-11-29T21:14:03Z", "2026-11-30T13:00:00+01:00")
    )
    assert answer.code == 0, answer.fields


async def test_every_optional_report_element_in_schema_order_is_accepted(standin: httpx.AsyncClient) -> None:
    full = (
        MINIMAL_REPORT.replace("<report>", '<report><batchedReport reason="VIRAL_POTENTIAL_MEME"/>')
        .replace(
            SUMMARY_TYPE,
            SUMMARY_TYPE
            + "<platform>Vigil</platform><escalateToHighPriority>imminent</escalateToHighPriority>",
        )
        .replace(
            INTERNET,
            INTERNET
            + "<internetDetails><webPageIncident><url>https://a.example/</url><url>https://b.example/</url>"
            + "</webPageIncident></internetDetails>"
            + "<lawEnforcement><agencyName>PD</agencyName><reportedToLe>true</reportedToLe></lawEnforcement>",
        )
        .replace(
            "<screenName>example_handle</screenName>",
            "<screenName>example_handle</screenName><displayName>a</displayName><displayName>b</displayName>",
        )
        .replace(
            "</victim>",
            "</victim><victim><victimPerson><firstName>B</firstName><age>12</age></victimPerson></victim>"
            "<additionalInfo>context</additionalInfo>",
        )
    )
    answer = await submit(standin, full)
    assert answer.code == 0, answer.fields


async def test_malformed_or_dangerous_xml_is_4110(standin: httpx.AsyncClient) -> None:
    assert (await submit(standin, "<report><incidentSummary>")).code == 4110
    doctype = '<?xml version="1.0"?><!DOCTYPE report [<!ENTITY x "y">]><report>&x;</report>'
    answer = await submit(standin, doctype)
    assert (answer.http_status, answer.code) == (400, 4110)


async def test_submit_needs_an_xml_content_type(standin: httpx.AsyncClient) -> None:
    sent = await standin.post(
        "/submit", content=MINIMAL_REPORT.encode(), headers={"Content-Type": "text/plain"}
    )
    assert parse(sent).code == 4000


@pytest.fixture
async def open_file(standin: httpx.AsyncClient) -> tuple[int, str]:
    report_id = int((await submit(standin, MINIMAL_REPORT)).fields["reportId"])
    file_id = (await upload(standin, report_id, b"bytes")).fields["fileId"]
    return report_id, file_id


IP = "<ipCaptureEvent><ipAddress>198.51.100.23</ipAddress></ipCaptureEvent>"
SUPPLEMENTAL = "<fileRelevance>Supplemental Reported</fileRelevance>"
HASHES = f'<originalFileHash hashType="SHA256">{SHA}</originalFileHash>'
FILE_CASES = {
    "ipCaptureEvent before industryClassification": (
        f"<fileRelevance>Reported</fileRelevance>{IP}<industryClassification>B2</industryClassification>",
        "Invalid content was found starting with element 'industryClassification'",
    ),
    "Supplemental Reported with industryClassification": (
        f"{SUPPLEMENTAL}<industryClassification>A1</industryClassification>",
        "industryClassification is allowed only",
    ),
    "Supplemental Reported with potentialMeme": (
        f"{SUPPLEMENTAL}<fileAnnotations><potentialMeme/></fileAnnotations>",
        "potentialMeme is allowed only",
    ),
    "exifViewedByEsp true with fileViewedByEsp false": (
        "<fileViewedByEsp>false</fileViewedByEsp><exifViewedByEsp>true</exifViewedByEsp>",
        "exifViewedByEsp",
    ),
    "two ipCaptureEvent": (
        f"{HASHES}{IP}{IP}",
        "Invalid content was found starting with element 'ipCaptureEvent'",
    ),
    "hash without hashType": (f"<originalFileHash>{PDQ}</originalFileHash>", "hashType"),
    "classification not in the scale": ("<industryClassification>C1</industryClassification>", "enumeration"),
}


@pytest.mark.parametrize("case", sorted(FILE_CASES))
async def test_each_bad_file_details_is_rejected_with_4100(
    standin: httpx.AsyncClient, open_file: tuple[int, str], case: str
) -> None:
    middle, message = FILE_CASES[case]
    answer = await fileinfo(standin, file_details(*open_file, middle="\n  " + middle))
    assert (answer.http_status, answer.code) == (400, 4100), answer.fields
    assert message in answer.fields["responseDescription"], answer.fields["responseDescription"]
    files = (await standin.get("/_standin/reports")).json()["reports"][0]["files"]
    assert files[0]["details"] is False


async def test_file_details_in_schema_order_are_accepted(
    standin: httpx.AsyncClient, open_file: tuple[int, str]
) -> None:
    middle = f"""
  <fileName>a.jpg</fileName><originalFileName>IMG.jpg</originalFileName>
  <uploadedToEspTimestamp>2026-11-29T21:00:00Z</uploadedToEspTimestamp>
  <locationOfFile>https://vigil.example/f</locationOfFile>
  <fileViewedByEsp>true</fileViewedByEsp><exifViewedByEsp>true</exifViewedByEsp>
  <publiclyAvailable>false</publiclyAvailable><fileRelevance>Reported</fileRelevance>
  <fileAnnotations><potentialMeme/><generativeAi/></fileAnnotations>
  <industryClassification>A2</industryClassification>
  {HASHES}<originalFileHash hashType="PDQ">{PDQ}</originalFileHash>{IP}
  <deviceId><idType>IMEI</idType><idValue>1</idValue></deviceId>
  <details type="HASH"><nameValuePair><name>n</name><value>v</value></nameValuePair></details>"""
    answer = await fileinfo(standin, file_details(*open_file, middle=middle))
    assert answer.code == 0, answer.fields


async def test_future_check_follows_the_injected_clock(standin: httpx.AsyncClient, clock: FakeClock) -> None:
    later = MINIMAL_REPORT.replace("2026-11-29T21:14:03Z", "2026-12-01T00:00:00Z")
    assert (await submit(standin, later)).code == 4100
    clock.advance(days=2)
    assert (await submit(standin, later)).code == 0


async def test_fileinfo_content_type(standin: httpx.AsyncClient, open_file: tuple[int, str]) -> None:
    sent = await standin.post("/fileinfo", content=file_details(*open_file).encode(), headers=XML)
    assert parse(sent).code == 0


async def test_newer_schema_elements_can_be_switched_off(clock: FakeClock) -> None:
    from vigil.ncmec_standin import SchemaOptions, create_standin_app

    app = create_standin_app("u", "p", clock=clock, options=SchemaOptions(newer_schema=False))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://standin.test", auth=("u", "p")
    ) as older:
        batched = MINIMAL_REPORT.replace("<report>", '<report><batchedReport reason="VIRAL_POTENTIAL_MEME"/>')
        assert (await submit(older, batched)).code == 4100
        assert (await submit(older, MINIMAL_REPORT)).code == 0

"""`CyberTiplineClient` against the stand-in in process (httpx over ASGI), with an `httpx.MockTransport`
wrapper that fails the first calls in NCMEC's wire format (or with a transport error) and then forwards."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest

from ncmec_samples import SPEC_MINIMAL_REPORT
from vigil.errors import VigilError
from vigil.ncmec_standin import create_standin_app
from vigil.server.cybertipline import (
    CallRecord,
    CyberTiplineClient,
    CyberTiplineOutcomeUnknown,
    CyberTiplineRefused,
    CyberTiplineUnavailable,
    RetryPolicy,
)
from vigil.server.settings import (
    CYBERTIPLINE_PRODUCTION_URL,
    CYBERTIPLINE_TEST_URL,
    Environment,
    Settings,
)

USER = "esp-user"
PASSWORD = "pw-Zq8-never-shown"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
BASE = "http://cybertip.test"  # the stand-in serves the API at its root
SCREEN_NAME = "example_handle_secret_text"
FILE_BYTES = b"\x89PNG not really an image 7c1e"

REPORT = SPEC_MINIMAL_REPORT.replace(
    "<screenName>example_handle</screenName>", f"<screenName>{SCREEN_NAME}</screenName>"
).encode()

# `reporter` before `internetDetails`: out of order, rejected with 4100.
INTERNET_DETAILS = (
    b"  <internetDetails>\n    <chatImIncident><chatClient>Vigil</chatClient></chatImIncident>\n"
    b"  </internetDetails>\n"
)
OUT_OF_ORDER = REPORT.replace(INTERNET_DETAILS, b"").replace(
    b"  </reporter>\n", b"  </reporter>\n" + INTERNET_DETAILS
)


def file_details(report_id: int, file_id: str) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<fileDetails>
  <reportId>{report_id}</reportId>
  <fileId>{file_id}</fileId>
  <originalFileName>IMG_0412.jpg</originalFileName>
  <fileViewedByEsp>true</fileViewedByEsp>
  <publiclyAvailable>false</publiclyAvailable>
  <fileRelevance>Reported</fileRelevance>
  <industryClassification>B2</industryClassification>
  <originalFileHash hashType="SHA256">{"ab" * 32}</originalFileHash>
</fileDetails>
""".encode()


Fault = Callable[[httpx.Request], httpx.Response | Exception]


def ncmec_error(http_status: int, code: int, description: str) -> Fault:
    """An answer in NCMEC's wire format: `<reportResponse>` with a code, and a Request-ID."""

    def answer(request: httpx.Request) -> httpx.Response:
        body = (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<reportResponse>'
            f"<responseCode>{code}</responseCode><responseDescription>{description}</responseDescription>"
            "</reportResponse>"
        )
        return httpx.Response(
            http_status,
            content=body.encode(),
            headers={"Content-Type": "text/xml", "Request-ID": f"fault-{code}-{http_status}"},
        )

    return answer


def transport_error(kind: type[httpx.TransportError]) -> Fault:
    return lambda request: kind("injected", request=request)


class Harness:
    """The stand-in behind a MockTransport that plays `faults` on the first calls, then forwards."""

    def __init__(self, password: str = PASSWORD) -> None:
        self.app = create_standin_app(USER, PASSWORD, clock=lambda: NOW)
        self.inner = httpx.ASGITransport(app=self.app)
        self.faults: list[Fault] = []
        self.lost_answers = 0  # forward, then lose the answer (a timeout after NCMEC acted)
        self.paths: list[str] = []
        self.records: list[CallRecord] = []
        self.sleeps: list[float] = []
        self.password = password

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        if self.faults:
            outcome = self.faults.pop(0)(request)
            if isinstance(outcome, Exception):
                raise outcome
            return outcome
        response = await self.inner.handle_async_request(request)
        if self.lost_answers:
            self.lost_answers -= 1
            await response.aread()
            raise httpx.ReadTimeout("answer lost", request=request)
        return response

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def client(self, attempts: int = 4) -> CyberTiplineClient:
        return CyberTiplineClient(
            BASE,
            USER,
            self.password,
            recorder=self.records.append,
            retry=RetryPolicy(attempts=attempts, base_delay=0.5, max_delay=8.0),
            sleep=self.sleep,
            transport=httpx.MockTransport(self.handle),
        )

    def standin(self) -> dict[str, Any]:
        view: dict[str, Any] = self.app.state.standin.view()
        return view


@pytest.fixture
def harness() -> Harness:
    return Harness()


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> pytest.LogCaptureFixture:
    """Everything logged at DEBUG, ours and httpx's. Loggers are re-enabled: a tool run earlier in the
    session (import-linter in test_architecture) may have disabled existing loggers via dictConfig."""
    for name in ("vigil.server.cybertipline", "httpx", "httpcore"):
        monkeypatch.setattr(logging.getLogger(name), "disabled", False)
    # An in-process server earlier in the session (vigil.server.access_log.log_config) sets the `vigil`
    # logger's level and stops its records at its own handler; caplog listens on the root.
    monkeypatch.setattr(logging.getLogger("vigil"), "propagate", True)
    caplog.set_level(logging.DEBUG, logger="vigil")
    caplog.set_level(logging.DEBUG)
    return caplog


async def test_submit_upload_fileinfo_finish_files_a_report(harness: Harness) -> None:
    async with harness.client() as client:
        status = await client.status()
        assert status.response_code == 0 and f"Remote User : {USER}" in status.description
        submitted = await client.submit(REPORT)
        assert submitted.report_id is not None
        report_id = submitted.report_id
        uploaded = await client.upload(report_id, FILE_BYTES, "evidence.png")
        assert uploaded.file_id is not None and len(uploaded.file_id) == 32
        assert uploaded.report_id == report_id
        await client.fileinfo(file_details(report_id, uploaded.file_id))
        finished = await client.finish(report_id)
    assert finished.report_id == report_id and finished.file_ids == (uploaded.file_id,)

    (stored,) = harness.standin()["reports"]
    assert stored["state"] == "finished" and stored["report_id"] == report_id
    (stored_file,) = stored["files"]
    assert stored_file["md5"] == uploaded.md5 and stored_file["details"] is True
    assert stored_file["size"] == len(FILE_BYTES) and stored_file["filename"] == "evidence.png"
    # Every call recorded once, with the stand-in's Request-ID.
    calls = harness.standin()["calls"]
    assert [r.endpoint for r in harness.records] == ["status", "submit", "upload", "fileinfo", "finish"]
    assert [r.request_id for r in harness.records] == [c["request_id"] for c in calls]
    assert all(r.attempt == 1 and r.http_status == 200 and r.response_code == 0 for r in harness.records)
    assert finished.request_id == calls[-1]["request_id"]
    assert harness.sleeps == []


async def test_retract_then_retract_again_is_refused_with_5101_and_not_retried(harness: Harness) -> None:
    async with harness.client() as client:
        report_id = (await client.submit(REPORT)).report_id
        assert report_id is not None
        retracted = await client.retract(report_id)
        assert retracted.report_id == report_id
        with pytest.raises(CyberTiplineRefused) as refused:
            await client.retract(report_id)
        with pytest.raises(CyberTiplineRefused) as finished_after:
            await client.finish(report_id)
    assert refused.value.ncmec_code == 5101 and refused.value.http_status == 400
    assert finished_after.value.ncmec_code == 5101
    assert harness.standin()["reports"][0]["state"] == "retracted"
    assert harness.sleeps == [] and len(harness.records) == 4


async def test_4xx_is_surfaced_with_ncmecs_code_never_content_and_not_retried(harness: Harness) -> None:
    async with harness.client() as client:
        with pytest.raises(CyberTiplineRefused) as refused:
            await client.submit(OUT_OF_ORDER)
    error = refused.value
    assert isinstance(error, VigilError)
    assert error.ncmec_code == 4100 and error.http_status == 400 and error.endpoint == "submit"
    assert error.description.startswith("Validation failed")
    assert error.request_id and error.request_id in str(error)
    assert "4100" in str(error) and SCREEN_NAME not in str(error)
    assert harness.paths == ["/submit"] and harness.sleeps == []
    assert harness.standin()["reports"] == []


async def test_unknown_report_is_refused_with_5001(harness: Harness) -> None:
    async with harness.client() as client:
        with pytest.raises(CyberTiplineRefused) as refused:
            await client.upload(424242, FILE_BYTES)
    assert refused.value.ncmec_code == 5001
    assert len(harness.paths) == 1


async def test_5xx_is_retried_with_exponential_backoff(harness: Harness) -> None:
    harness.faults = [ncmec_error(500, 1000, "Server error"), ncmec_error(503, 1000, "Server error")]
    async with harness.client() as client:
        status = await client.status()
    assert status.response_code == 0
    assert harness.sleeps == [0.5, 1.0]
    assert [(r.attempt, r.http_status, r.response_code) for r in harness.records] == [
        (1, 500, 1000),
        (2, 503, 1000),
        (3, 200, 0),
    ]
    assert [r.request_id for r in harness.records][:2] == ["fault-1000-500", "fault-1000-503"]
    assert harness.records[2].request_id == status.request_id


async def test_timeouts_and_connection_errors_are_retried_for_repeatable_calls(harness: Harness) -> None:
    async with harness.client() as client:
        report_id = (await client.submit(REPORT)).report_id
        assert report_id is not None
        uploaded = await client.upload(report_id, FILE_BYTES)
        assert uploaded.file_id is not None
        harness.faults = [transport_error(httpx.ReadTimeout), transport_error(httpx.RemoteProtocolError)]
        await client.fileinfo(file_details(report_id, uploaded.file_id))
        harness.faults = [transport_error(httpx.ConnectError)]
        finished = await client.finish(report_id)
    assert finished.file_ids == (uploaded.file_id,)
    assert harness.sleeps == [0.5, 1.0, 0.5]
    assert [r.error for r in harness.records if r.error] == [
        "ReadTimeout",
        "RemoteProtocolError",
        "ConnectError",
    ]


async def test_a_finish_whose_answer_was_lost_is_recognised_by_5102_on_retry(harness: Harness) -> None:
    async with harness.client() as client:
        report_id = (await client.submit(REPORT)).report_id
        assert report_id is not None
        harness.lost_answers = 1
        with pytest.raises(CyberTiplineRefused) as refused:
            await client.finish(report_id)
    assert refused.value.ncmec_code == 5102  # the earlier attempt finished it: do not re-file
    assert harness.standin()["reports"][0]["state"] == "finished"


async def test_submit_is_retried_only_when_the_request_surely_did_not_leave(harness: Harness) -> None:
    harness.faults = [transport_error(httpx.ConnectError), transport_error(httpx.ConnectTimeout)]
    async with harness.client() as client:
        submitted = await client.submit(REPORT)
    assert harness.sleeps == [0.5, 1.0]
    assert [r["report_id"] for r in harness.standin()["reports"]] == [submitted.report_id]


async def test_submit_after_a_read_timeout_or_5xx_is_not_retried(harness: Harness) -> None:
    harness.lost_answers = 1  # NCMEC opened the report, the answer never came back
    async with harness.client() as client:
        with pytest.raises(CyberTiplineOutcomeUnknown) as unknown:
            await client.submit(REPORT)
        assert "ReadTimeout" in str(unknown.value)
        harness.faults = [ncmec_error(500, 1000, "Server error")]
        with pytest.raises(CyberTiplineOutcomeUnknown) as after_5xx:
            await client.submit(REPORT)
        report_id = harness.standin()["reports"][0]["report_id"]
        harness.faults = [transport_error(httpx.WriteTimeout)]
        with pytest.raises(CyberTiplineOutcomeUnknown):
            await client.upload(report_id, FILE_BYTES)
    assert after_5xx.value.ncmec_code == 1000 and after_5xx.value.http_status == 500
    assert harness.sleeps == []
    assert len(harness.standin()["reports"]) == 1  # one report opened, never a duplicate
    assert isinstance(unknown.value, CyberTiplineUnavailable)


async def test_retries_are_bounded(harness: Harness) -> None:
    harness.faults = [ncmec_error(500, 1000, "Server error")] * 3
    async with harness.client(attempts=3) as client:
        with pytest.raises(CyberTiplineUnavailable) as failed:  # NCMEC failing is an outage
            await client.status()
        harness.faults = [transport_error(httpx.ConnectError)] * 3
        with pytest.raises(CyberTiplineUnavailable) as unreachable:
            await client.status()
    assert failed.value.ncmec_code == 1000 and failed.value.http_status == 500
    assert "after 3 attempt(s)" in str(unreachable.value)
    assert harness.sleeps == [0.5, 1.0, 0.5, 1.0]


async def test_wrong_password_is_refused_with_2000_and_the_password_is_never_shown(
    logs: pytest.LogCaptureFixture,
) -> None:
    wrong = Harness(password="wrong-" + PASSWORD)
    async with wrong.client() as client:
        with pytest.raises(CyberTiplineRefused) as refused:
            await client.status()
    assert refused.value.ncmec_code == 2000 and refused.value.http_status == 401
    assert wrong.sleeps == []
    assert PASSWORD not in str(refused.value) and PASSWORD not in repr(refused.value)
    assert "code=2000" in logs.text and PASSWORD not in logs.text


async def test_logs_carry_endpoint_status_code_and_request_id_only(
    harness: Harness, logs: pytest.LogCaptureFixture
) -> None:
    async with harness.client() as client:
        report_id = (await client.submit(REPORT)).report_id
        assert report_id is not None
        uploaded = await client.upload(report_id, FILE_BYTES)
        assert uploaded.file_id is not None
        await client.fileinfo(file_details(report_id, uploaded.file_id))
        await client.finish(report_id)
    ours = [r.getMessage() for r in logs.records if r.name == "vigil.server.cybertipline"]
    assert len(ours) == 4
    for record, message in zip(harness.records, ours, strict=True):
        assert f"/{record.endpoint}" in message and f"request_id={record.request_id}" in message
        assert "http=200" in message and "code=0" in message
    for secret in (PASSWORD, SCREEN_NAME, "IMG_0412", "not really an image"):
        assert secret not in logs.text
    assert repr(FILE_BYTES)[2:-1] not in logs.text


def test_settings_default_to_ncmecs_test_base_and_hide_the_password(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        cybertipline_username=USER,
        cybertipline_password=PASSWORD,  # type: ignore[arg-type]
    )
    assert settings.cybertipline_url == CYBERTIPLINE_TEST_URL == "https://exttest.cybertip.org/ispws"
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings.model_dump())


def test_settings_refuse_the_production_url_in_dev(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_CYBERTIPLINE_PASSWORD", PASSWORD)
    for url in (CYBERTIPLINE_PRODUCTION_URL, "HTTPS://Report.CyberTip.org./ispws/"):
        monkeypatch.setenv("VIGIL_CYBERTIPLINE_URL", url)
        with pytest.raises(pydantic.ValidationError, match="production CyberTipline") as refused:
            Settings(data_dir=tmp_path)
        assert PASSWORD not in str(refused.value)
    monkeypatch.setenv("VIGIL_CYBERTIPLINE_URL", "ftp://exttest.cybertip.org/ispws")
    with pytest.raises(pydantic.ValidationError, match="http"):
        Settings(data_dir=tmp_path)
    monkeypatch.setenv("VIGIL_CYBERTIPLINE_URL", CYBERTIPLINE_PRODUCTION_URL)
    production = Settings(
        environment=Environment.PROD,
        data_dir=tmp_path,
        franking_key="ab" * 32,  # type: ignore[arg-type]
        report_key="cd" * 32,  # type: ignore[arg-type]
        notice_signing_key="ef" * 32,  # type: ignore[arg-type]
    )
    assert production.cybertipline_url == CYBERTIPLINE_PRODUCTION_URL


def test_a_client_needs_configured_credentials(tmp_path: Path) -> None:
    with pytest.raises(VigilError, match="VIGIL_CYBERTIPLINE_USERNAME"):
        CyberTiplineClient.from_settings(Settings(data_dir=tmp_path))


def endless_body(request: httpx.Request) -> httpx.Response:
    """An answer that never ends (a broken proxy, a hostile endpoint): the client must stop reading."""

    async def chunks() -> Any:
        yield b'<?xml version="1.0"?><reportResponse><responseCode>0</responseCode><responseDescription>'
        while True:
            yield b"a" * 65536

    return httpx.Response(200, content=chunks(), headers={"Content-Type": "text/xml"})


async def test_a_huge_or_endless_answer_is_not_read_past_the_cap(harness: Harness) -> None:
    import asyncio

    harness.faults = [endless_body]
    async with harness.client(attempts=1) as client:
        with pytest.raises(VigilError, match="without a readable CyberTipline answer"):
            await asyncio.wait_for(client.status(), timeout=20)
    harness.faults = [endless_body]
    async with harness.client(attempts=1) as client:
        with pytest.raises(CyberTiplineOutcomeUnknown):  # /submit may have reached NCMEC: not repeated
            await asyncio.wait_for(client.submit(REPORT), timeout=20)

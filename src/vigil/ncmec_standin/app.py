"""The stand-in CyberTipline server: NCMEC's reporting API (`shared/ncmec-cybertipline.md` §2–§6) in memory.

Endpoints, with HTTP basic auth: `GET /status`, `POST /submit` (a `<report>`), `POST /upload` (multipart
`id` + `file`), `POST /fileinfo` (a `<fileDetails>`), `POST /finish` and `POST /retract` (multipart `id`).
Answers are `<reportResponse>` (or `<reportDoneResponse>` from `/finish`) with NCMEC's response codes and
a `Request-ID` header. `GET /_standin/reports` is a read-only JSON view for tests (no NCMEC equivalent).
File bytes are kept only as size, MD5 and SHA-256; no content is ever logged.

Faults for tests and rehearsals (no NCMEC equivalent either): `POST /_standin/faults` with
`{"rules": [{"endpoint": "finish", "action": "fail", "times": 2, "http_status": 500, "code": 1000},
{"endpoint": "fileinfo", "action": "stall", "seconds": 5, "times": 1}]}` makes the next calls of an
endpoint answer an error (in the real wire format, nothing done) or be handled as usual but answered only
after a wait (so a client times out, or a filer is killed, after the call took effect: a lost answer);
each rule applies `times` times. `GET` shows the rules left.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import hashlib
import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from xml.sax.saxutils import escape

import defusedxml.ElementTree as DefusedET
from defusedxml import DefusedXmlException
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile

from vigil.ncmec_standin.schema import ROOTS, DocumentInvalid, SchemaOptions, validate_document

__all__ = ["Clock", "FaultRule", "StandinState", "create_standin_app"]

log = logging.getLogger("vigil.ncmec_standin")

Clock = Callable[[], datetime]
State = Literal["open", "finished", "retracted", "expired"]

MAX_XML_BYTES = 1024 * 1024
OPEN_FOR = timedelta(hours=24)  # an unfinished report is deleted 24 h after it was opened …
IDLE_FOR = timedelta(hours=1)  # … or 1 h after its last modification, whichever is later
FIRST_REPORT_ID = 1000001
XML_TYPE = "text/xml; charset=utf-8"

DESCRIPTIONS = {
    0: "Success",
    2000: "Authentication required",
    4000: "Invalid request",
    4100: "Validation failed",
    4110: "Malformed XML submittal",
    4200: "Malformed file submittal",
    5001: "Report does not exist",
    5002: "File does not exist",
    5101: "Report already retracted",
    5102: "Report already finished",
}


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class StoredFile:
    file_id: str
    filename: str
    size: int
    md5: str
    sha256: str
    uploaded_at: datetime
    details: bool = False  # a /fileinfo was accepted for it
    # What the accepted fileDetails said about the file (for tests): never content, only these facts.
    viewed_by_esp: str | None = None
    classification: str | None = None
    relevance: str | None = None
    hashes: dict[str, str] = field(default_factory=dict)


@dataclass
class StoredReport:
    report_id: int
    user: str
    state: State
    opened_at: datetime
    modified_at: datetime
    incident_type: str
    files: dict[str, StoredFile] = field(default_factory=dict)
    closed_at: datetime | None = None

    def expires_at(self) -> datetime:
        return max(self.opened_at + OPEN_FOR, self.modified_at + IDLE_FOR)


@dataclass
class Call:
    endpoint: str
    request_id: str
    response_code: int
    at: datetime
    report_id: int | None = None
    file_id: str | None = None


@dataclass
class FaultRule:
    endpoint: str
    action: Literal["fail", "stall"]
    times: int = 1
    seconds: float = 0.0
    http_status: int = 500
    code: int = 1000


@dataclass
class StandinState:
    """Everything the stand-in holds. Reports expire lazily, whenever the state is looked at."""

    clock: Clock
    reports: dict[int, StoredReport] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    next_report_id: int = FIRST_REPORT_ID
    faults: list[FaultRule] = field(default_factory=list)

    def take_fault(self, endpoint: str) -> FaultRule | None:
        for rule in self.faults:
            if rule.endpoint == endpoint and rule.times > 0:
                rule.times -= 1
                return rule
        return None

    def expire(self) -> None:
        now = self.clock()
        for report in self.reports.values():
            if report.state == "open" and now >= report.expires_at():
                report.state = "expired"
                report.closed_at = now

    def view(self) -> dict[str, Any]:
        self.expire()
        return {
            "now": self.clock().isoformat(),
            "reports": [
                {
                    "report_id": report.report_id,
                    "user": report.user,
                    "state": report.state,
                    "incident_type": report.incident_type,
                    "opened_at": report.opened_at.isoformat(),
                    "modified_at": report.modified_at.isoformat(),
                    "expires_at": report.expires_at().isoformat() if report.state == "open" else None,
                    "closed_at": report.closed_at.isoformat() if report.closed_at else None,
                    "files": [
                        {
                            "file_id": stored.file_id,
                            "filename": stored.filename,
                            "size": stored.size,
                            "md5": stored.md5,
                            "sha256": stored.sha256,
                            "details": stored.details,
                            "viewed_by_esp": stored.viewed_by_esp,
                            "classification": stored.classification,
                            "relevance": stored.relevance,
                            "hashes": stored.hashes,
                        }
                        for stored in report.files.values()
                    ],
                    "request_ids": [
                        call.request_id for call in self.calls if call.report_id == report.report_id
                    ],
                }
                for report in self.reports.values()
            ],
            "calls": [
                {
                    "endpoint": call.endpoint,
                    "request_id": call.request_id,
                    "response_code": call.response_code,
                    "at": call.at.isoformat(),
                    "report_id": call.report_id,
                    "file_id": call.file_id,
                }
                for call in self.calls
            ],
        }


class _Refusal(Exception):
    def __init__(
        self, code: int, detail: str = "", http_status: int = 400, report_id: int | None = None
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.http_status = http_status
        self.report_id = report_id


def _xml(root: str, fields: list[tuple[str, str]], files: list[str] | None = None) -> str:
    body = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in fields)
    if files is not None:
        body += "<files>" + "".join(f"<fileId>{escape(fid)}</fileId>" for fid in files) + "</files>"
    return f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<{root}>{body}</{root}>\n'


def create_standin_app(
    username: str,
    password: str,
    *,
    clock: Clock = _utc_now,
    options: SchemaOptions | None = None,
) -> FastAPI:
    """The stand-in as an ASGI app; its `StandinState` is `app.state.standin`."""
    schema_options = options or SchemaOptions()
    state = StandinState(clock=clock)
    app = FastAPI(title="Vigil CyberTipline stand-in", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.standin = state

    def authenticate(request: Request) -> str:
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                user, sep, given = base64.b64decode(encoded, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, sep, given = "", "", ""
            if (
                sep
                and secrets.compare_digest(user.encode(), username.encode())
                and secrets.compare_digest(given.encode(), password.encode())
            ):
                return user
        raise _Refusal(2000, "bad or missing credentials", http_status=401)

    def answer(
        endpoint: str,
        request_id: str,
        code: int,
        fields: list[tuple[str, str]],
        *,
        http_status: int = 200,
        report_id: int | None = None,
        file_id: str | None = None,
        root: str = "reportResponse",
        files: list[str] | None = None,
        detail: str = "",
    ) -> Response:
        state.calls.append(Call(endpoint, request_id, code, clock(), report_id, file_id))
        log.info(
            "cybertip stand-in %s request_id=%s code=%d report_id=%s file_id=%s",
            endpoint,
            request_id,
            code,
            report_id,
            file_id,
        )
        headers = {"Request-ID": request_id}
        if http_status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="ISPWS"'
        if root == "reportResponse":
            description = DESCRIPTIONS.get(code, "Error") + (f" {detail}" if detail else "")
            fields = [("responseCode", str(code)), ("responseDescription", description), *fields]
        else:
            fields = [("responseCode", str(code)), *fields]
        return Response(
            _xml(root, fields, files), status_code=http_status, media_type=XML_TYPE, headers=headers
        )

    async def read_xml(request: Request, expected_root: str) -> Any:
        body = await request.body()
        if len(body) > MAX_XML_BYTES:
            raise _Refusal(4000, f"body larger than {MAX_XML_BYTES} bytes")
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in ("text/xml", "application/xml"):
            raise _Refusal(4000, f"expected Content-Type text/xml, got {content_type or 'none'}")
        try:
            root = DefusedET.fromstring(body, forbid_dtd=True)
        except DefusedXmlException as error:
            raise _Refusal(4110, f"- forbidden XML construct: {type(error).__name__}") from None
        except Exception as error:  # ParseError and friends: malformed XML
            raise _Refusal(4110, f"- {error}") from None
        try:
            validate_document(root, expected_root, schema_options, clock())
        except DocumentInvalid as invalid:
            raise _Refusal(4100, f"[{expected_root}] - {invalid.message}") from None
        return root

    async def form_id(request: Request) -> tuple[int, Any]:
        content_type = request.headers.get("content-type", "").lower()
        if not (
            content_type.startswith("multipart/form-data")
            or content_type.startswith("application/x-www-form-urlencoded")
        ):
            raise _Refusal(4000, "expected multipart/form-data")
        try:
            form = await request.form()
        except Exception:
            raise _Refusal(4000, "unreadable form") from None
        raw = form.get("id")
        if not isinstance(raw, str) or not raw.strip().isdigit():
            raise _Refusal(4000, "field 'id' must be a report id")
        return int(raw.strip()), form

    def open_report(report_id: int) -> StoredReport:
        state.expire()
        report = state.reports.get(report_id)
        if report is None or report.state == "expired":
            raise _Refusal(5001, f"- report {report_id}", report_id=report_id)
        if report.state == "retracted":
            raise _Refusal(5101, f"- report {report_id}", report_id=report_id)
        if report.state == "finished":
            raise _Refusal(5102, f"- report {report_id}", report_id=report_id)
        return report

    async def handle(request: Request, endpoint: str, work: Callable[[str], Any]) -> Response:
        request_id = str(uuid.uuid4())
        try:
            authenticate(request)
            fault = state.take_fault(endpoint)
            if fault is not None and fault.action == "fail":
                raise _Refusal(fault.code, "- injected fault", http_status=fault.http_status)
            result: Response = await work(request_id)
            if fault is not None:  # a stall: done here, but the answer is slow (or lost to a dead client)
                await asyncio.sleep(fault.seconds)
            return result
        except _Refusal as refusal:
            return answer(
                endpoint,
                request_id,
                refusal.code,
                [("reportId", str(refusal.report_id))] if refusal.report_id is not None else [],
                http_status=refusal.http_status,
                report_id=refusal.report_id,
                detail=refusal.detail,
            )

    @app.get("/status")
    async def status(request: Request) -> Response:
        async def work(request_id: str) -> Response:
            user = authenticate(request)
            where = request.client.host if request.client else "unknown"
            return answer("status", request_id, 0, [], detail=f"Remote User : {user}, Remote Ip : {where}")

        return await handle(request, "status", work)

    @app.post("/submit")
    async def submit(request: Request) -> Response:
        async def work(request_id: str) -> Response:
            user = authenticate(request)
            root = await read_xml(request, ROOTS["submit"])
            now = clock()
            report_id = state.next_report_id
            state.next_report_id += 1
            incident_type = root.findtext("incidentSummary/incidentType") or ""
            state.reports[report_id] = StoredReport(report_id, user, "open", now, now, incident_type)
            return answer("submit", request_id, 0, [("reportId", str(report_id))], report_id=report_id)

        return await handle(request, "submit", work)

    @app.post("/upload")
    async def upload(request: Request) -> Response:
        async def work(request_id: str) -> Response:
            report_id, form = await form_id(request)
            report = open_report(report_id)
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise _Refusal(4200, "- field 'file' must be a file part", report_id=report_id)
            content = await upload.read()
            now = clock()
            file_id = secrets.token_hex(16)
            stored = StoredFile(
                file_id=file_id,
                filename=upload.filename or "",
                size=len(content),
                md5=hashlib.md5(content, usedforsecurity=False).hexdigest(),
                sha256=hashlib.sha256(content).hexdigest(),
                uploaded_at=now,
            )
            del content
            report.files[file_id] = stored
            report.modified_at = now
            log.info(
                "cybertip stand-in upload report_id=%d file_id=%s size=%d sha256=%s",
                report_id,
                file_id,
                stored.size,
                stored.sha256,
            )
            return answer(
                "upload",
                request_id,
                0,
                [("reportId", str(report_id)), ("fileId", file_id), ("hash", stored.md5)],
                report_id=report_id,
                file_id=file_id,
            )

        return await handle(request, "upload", work)

    @app.post("/fileinfo")
    async def fileinfo(request: Request) -> Response:
        async def work(request_id: str) -> Response:
            root = await read_xml(request, ROOTS["fileinfo"])
            report_id = int((root.findtext("reportId") or "").strip())
            file_id = (root.findtext("fileId") or "").strip()
            report = open_report(report_id)
            stored = report.files.get(file_id)
            if stored is None:
                raise _Refusal(5002, f"- file {file_id[:64]}", report_id=report_id)
            stored.details = True
            stored.viewed_by_esp = root.findtext("fileViewedByEsp")
            stored.classification = root.findtext("industryClassification")
            stored.relevance = root.findtext("fileRelevance")
            stored.hashes = {
                (element.get("hashType") or "?").upper(): (element.text or "").strip()
                for element in root.findall("originalFileHash")
            }
            report.modified_at = clock()
            return answer(
                "fileinfo",
                request_id,
                0,
                [("reportId", str(report_id))],
                report_id=report_id,
                file_id=file_id,
            )

        return await handle(request, "fileinfo", work)

    @app.post("/finish")
    async def finish(request: Request) -> Response:
        async def work(request_id: str) -> Response:
            report_id, _ = await form_id(request)
            report = open_report(report_id)
            report.state = "finished"
            report.closed_at = clock()
            return answer(
                "finish",
                request_id,
                0,
                [("reportId", str(report_id))],
                report_id=report_id,
                root="reportDoneResponse",
                files=list(report.files),
            )

        return await handle(request, "finish", work)

    @app.post("/retract")
    async def retract(request: Request) -> Response:
        async def work(request_id: str) -> Response:
            report_id, _ = await form_id(request)
            report = open_report(report_id)
            report.state = "retracted"
            report.closed_at = clock()
            return answer("retract", request_id, 0, [("reportId", str(report_id))], report_id=report_id)

        return await handle(request, "retract", work)

    @app.get("/_standin/faults")
    async def faults() -> JSONResponse:
        return JSONResponse({"rules": [dataclasses.asdict(rule) for rule in state.faults if rule.times > 0]})

    @app.post("/_standin/faults")
    async def set_faults(request: Request) -> JSONResponse:
        try:
            body = await request.json()
            rules = [FaultRule(**rule) for rule in body.get("rules", [])]
        except (ValueError, TypeError, AttributeError) as error:
            return JSONResponse({"error": f"bad rules: {type(error).__name__}"}, status_code=400)
        if any(rule.action not in ("fail", "stall") for rule in rules):
            return JSONResponse({"error": "action is 'fail' or 'stall'"}, status_code=400)
        state.faults = rules
        return JSONResponse({"rules": len(rules)})

    @app.get("/_standin/reports")
    async def view() -> JSONResponse:
        return JSONResponse(state.view())

    return app

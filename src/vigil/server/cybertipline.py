"""Transport client for NCMEC's CyberTipline reporting API (`shared/ncmec-cybertipline.md` §1–§3).

`CyberTiplineClient` speaks the wire format: HTTP basic auth, `<report>`/`<fileDetails>` XML in (built
elsewhere), `<reportResponse>`/`<reportDoneResponse>` out, parsed with defusedxml into typed results. A
non-zero response code raises `CyberTiplineRefused` carrying NCMEC's code and description (never the
document or file content). Every HTTP attempt is passed to a recorder as a `CallRecord` (endpoint, HTTP
status, response code, `Request-ID`) and logged with those fields only: never file bytes, XML bodies,
message text or credentials.

Retries (exponential backoff, injectable sleep) follow one rule about idempotence:
- `/status`, `/fileinfo`, `/finish` and `/retract` are retried on 5xx, timeouts and connection errors.
  Repeating them cannot create anything new: a repeated `/finish` or `/retract` whose first attempt did
  land answers 5102/5101, which the caller reads as "already done" (`CyberTiplineRefused.ncmec_code`).
- `/submit` and `/upload` create something at NCMEC (a report, a file in it). A retry after the request
  may have reached NCMEC could open a duplicate report or attach a file twice, so they are retried only
  when the request surely did not leave (connection refused, connect timeout, no pooled connection).
  Any other failure raises `CyberTiplineOutcomeUnknown`: the caller must recover (a report id it holds can
  be retracted; an unknown one expires at NCMEC after 24 h) instead of filing again blindly.
4xx answers are never retried. A 5xx that outlasts the retries is an outage (`CyberTiplineUnavailable`,
with NCMEC's code), never a refusal.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import SecretStr

from vigil.errors import VigilError
from vigil.safety.ncmec import CyberTiplineResponse, CyberTiplineResponseError, parse_response
from vigil.safety.ncmec.response import MAX_RESPONSE_BYTES

if TYPE_CHECKING:
    from vigil.server.settings import Settings

__all__ = [
    "CallRecord",
    "CyberTiplineClient",
    "CyberTiplineError",
    "CyberTiplineOutcomeUnknown",
    "CyberTiplineRefused",
    "CyberTiplineUnavailable",
    "FinishResult",
    "Recorder",
    "ReportResult",
    "RetryPolicy",
]

log = logging.getLogger("vigil.server.cybertipline")

MAX_DESCRIPTION_CHARS = 500
XML_CONTENT_TYPE = "text/xml; charset=utf-8"
SAFE_TO_REPEAT = frozenset({"status", "fileinfo", "finish", "retract"})
# Failures in which the request never left this process: retrying them cannot duplicate anything.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class ReportResult:
    """A `<reportResponse>`: `report_id` from submit/upload/fileinfo/retract, `file_id`/`md5` from upload."""

    response_code: int
    description: str
    report_id: int | None
    file_id: str | None
    md5: str | None
    request_id: str | None


@dataclass(frozen=True)
class FinishResult:
    """A `<reportDoneResponse>` from `/finish`: the finished report and the ids of its files."""

    response_code: int
    report_id: int
    file_ids: tuple[str, ...]
    request_id: str | None


@dataclass(frozen=True)
class CallRecord:
    """One HTTP attempt, as recorded and logged: no body, no credentials. `error` names a transport
    failure's type (e.g. `ReadTimeout`) when there was no response."""

    endpoint: str
    attempt: int
    http_status: int | None
    response_code: int | None
    request_id: str | None
    report_id: int | None
    file_id: str | None
    error: str | None
    seconds: float


Recorder = Callable[[CallRecord], None]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` in all (1: no retry); waits `base_delay * 2**n`, capped at `max_delay`."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 8.0

    def delay(self, retry: int) -> float:
        return float(min(self.max_delay, self.base_delay * (2**retry)))


class CyberTiplineError(VigilError):
    """A CyberTipline call failed. Carries the endpoint, HTTP status, NCMEC's response code and
    description and the `Request-ID` when there was an answer; never content or credentials."""

    code = "cybertipline_error"

    def __init__(
        self,
        endpoint: str,
        detail: str,
        *,
        http_status: int | None = None,
        ncmec_code: int | None = None,
        description: str = "",
        request_id: str | None = None,
    ) -> None:
        where = f" (Request-ID {request_id})" if request_id else ""
        super().__init__(f"/{endpoint}: {detail}{where}")
        self.endpoint = endpoint
        self.http_status = http_status
        self.ncmec_code = ncmec_code
        self.description = description
        self.request_id = request_id


class CyberTiplineRefused(CyberTiplineError):
    """NCMEC answered with a non-zero response code (or a 4xx without a readable answer)."""

    code = "cybertipline_refused"


class CyberTiplineUnavailable(CyberTiplineError):
    """NCMEC could not be reached or kept failing (5xx, timeouts) after every retry."""

    code = "cybertipline_unavailable"


class CyberTiplineOutcomeUnknown(CyberTiplineUnavailable):
    """A `/submit` or `/upload` failed after it may have reached NCMEC; it was not retried (a retry could
    open a duplicate report or attach a file twice). Recover before filing again."""

    code = "cybertipline_outcome_unknown"


class CyberTiplineClient:
    """Async client for one CyberTipline base URL (test or production) with one set of credentials.

    Use as `async with CyberTiplineClient(...) as client:`. `transport` is for tests (e.g.
    `httpx.ASGITransport` around the stand-in); `sleep` replaces `asyncio.sleep` between retries."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: SecretStr | str,
        *,
        recorder: Recorder | None = None,
        retry: RetryPolicy | None = None,
        sleep: Sleep | None = None,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        secret = password if isinstance(password, SecretStr) else SecretStr(password)
        self._base_url = base_url.rstrip("/")
        self._shown_url = str(httpx.URL(self._base_url).copy_with(userinfo=b""))
        self._recorder = recorder
        self._retry = retry or RetryPolicy()
        self._sleep: Sleep = sleep or asyncio.sleep
        # httpx's timeout bounds each wait for bytes; this bounds a whole answer (a slow drip never ends).
        self._answer_deadline = 2 * timeout
        self._http = httpx.AsyncClient(
            auth=httpx.BasicAuth(username, secret.get_secret_value()),
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> CyberTiplineClient:
        """A client for the configured URL and credentials. Raises CyberTiplineError when the
        username or password is not set."""
        if not settings.cybertipline_username or settings.cybertipline_password is None:
            raise CyberTiplineError(
                "status",
                "VIGIL_CYBERTIPLINE_USERNAME and VIGIL_CYBERTIPLINE_PASSWORD must be set",
            )
        return cls(
            settings.cybertipline_url,
            settings.cybertipline_username,
            settings.cybertipline_password,
            **options,
        )

    @property
    def base_url(self) -> str:
        return self._base_url

    async def __aenter__(self) -> CyberTiplineClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- endpoints ---------------------------------------------------------------------------------

    async def status(self) -> ReportResult:
        """`GET /status`: connectivity and credentials. Raises CyberTiplineRefused (e.g. 2000 on bad
        credentials) or CyberTiplineUnavailable."""
        return await self._report_call("status", "GET", {})

    async def submit(self, report_xml: bytes) -> ReportResult:
        """`POST /submit` with one `<report>` document; the result holds the new `report_id`. Raises
        CyberTiplineRefused (e.g. 4100), CyberTiplineOutcomeUnknown (may have reached NCMEC) or
        CyberTiplineUnavailable (surely not sent)."""
        result = await self._report_call(
            "submit", "POST", {"content": report_xml, "headers": {"Content-Type": XML_CONTENT_TYPE}}
        )
        if result.report_id is None:
            raise CyberTiplineOutcomeUnknown(  # NCMEC says it opened a report but not which one
                "submit", "answer without a reportId", request_id=result.request_id
            )
        return result

    async def upload(self, report_id: int, content: bytes, filename: str = "file.bin") -> ReportResult:
        """`POST /upload`: one file for an open report; the result holds its `file_id` and NCMEC's MD5.
        Raises as `submit` does (5001 for an unknown or expired report)."""
        result = await self._report_call(
            "upload",
            "POST",
            {
                "data": {"id": str(report_id)},
                "files": {"file": (filename, content, "application/octet-stream")},
            },
            report_id=report_id,
        )
        if result.file_id is None:
            raise CyberTiplineError("upload", "answer without a fileId", request_id=result.request_id)
        return result

    async def fileinfo(self, file_details_xml: bytes) -> ReportResult:
        """`POST /fileinfo` with one `<fileDetails>` document. Raises CyberTiplineRefused (4100, 5001,
        5002) or CyberTiplineUnavailable."""
        return await self._report_call(
            "fileinfo",
            "POST",
            {"content": file_details_xml, "headers": {"Content-Type": XML_CONTENT_TYPE}},
        )

    async def finish(self, report_id: int) -> FinishResult:
        """`POST /finish`: completes the report (irreversible). Raises CyberTiplineRefused (5102 when it
        was already finished, e.g. by an attempt whose answer was lost; 5101 when retracted; 5001) or
        CyberTiplineUnavailable."""
        answer, request_id = await self._call("finish", "POST", _id_form(report_id), report_id=report_id)
        if answer.root != "reportDoneResponse":
            raise CyberTiplineError("finish", f"unexpected answer <{answer.root}>", request_id=request_id)
        return FinishResult(
            response_code=0,
            report_id=answer.report_id or report_id,
            file_ids=answer.file_ids,
            request_id=request_id,
        )

    async def retract(self, report_id: int) -> ReportResult:
        """`POST /retract`: cancels an unfinished report. Raises CyberTiplineRefused (5101 already
        retracted, 5102 already finished, 5001 unknown or expired) or CyberTiplineUnavailable."""
        return await self._report_call("retract", "POST", _id_form(report_id), report_id=report_id)

    # -- machinery ---------------------------------------------------------------------------------

    async def _report_call(
        self, endpoint: str, method: str, request: dict[str, Any], *, report_id: int | None = None
    ) -> ReportResult:
        answer, request_id = await self._call(endpoint, method, request, report_id=report_id)
        if answer.root != "reportResponse":
            raise CyberTiplineError(endpoint, f"unexpected answer <{answer.root}>", request_id=request_id)
        return ReportResult(
            response_code=0,
            description=_clip(answer.response_description or ""),
            report_id=answer.report_id,
            file_id=answer.file_id,
            md5=answer.hash,
            request_id=request_id,
        )

    async def _call(
        self, endpoint: str, method: str, request: dict[str, Any], *, report_id: int | None
    ) -> tuple[CyberTiplineResponse, str | None]:
        """One logical call with retries: the parsed successful answer and its Request-ID."""
        repeatable = endpoint in SAFE_TO_REPEAT
        url = f"{self._base_url}/{endpoint}"
        attempt = 0
        while True:
            attempt += 1
            last = attempt >= self._retry.attempts
            started = time.monotonic()
            try:
                status_code, request_id, body = await self._exchange(method, url, request)
            except httpx.TransportError as error:
                self._record(endpoint, attempt, None, None, None, report_id, None, error, started)
                surely_not_sent = isinstance(error, _NOT_SENT)
                if not repeatable and not surely_not_sent:
                    raise CyberTiplineOutcomeUnknown(
                        endpoint,
                        f"{type(error).__name__} after the request may have reached NCMEC; not "
                        "retried (a retry could duplicate it)",
                    ) from None
                if last:
                    raise CyberTiplineUnavailable(
                        endpoint,
                        f"{self._shown_url} unreachable after {attempt} attempt(s): {type(error).__name__}",
                    ) from None
                await self._sleep(self._retry.delay(attempt - 1))
                continue

            answer = None if body is None else _parse(body)
            code = answer.response_code if answer else None
            file_id = answer.file_id if answer else None
            self._record(endpoint, attempt, status_code, code, request_id, report_id, file_id, None, started)
            description = _clip(answer.response_description or "") if answer else ""
            if status_code >= 500:
                if not repeatable:
                    raise CyberTiplineOutcomeUnknown(
                        endpoint,
                        _failure_text(status_code, code, description)
                        + "; not retried (a retry could duplicate it)",
                        http_status=status_code,
                        ncmec_code=code,
                        description=description,
                        request_id=request_id,
                    )
                if not last:
                    await self._sleep(self._retry.delay(attempt - 1))
                    continue
                # A 5xx is NCMEC failing, not refusing (its 1000/1100/1300 mean "try again"): an outage,
                # so a caller leaves the report for recovery instead of retracting what is done.
                raise CyberTiplineUnavailable(
                    endpoint,
                    _failure_text(status_code, code, description) + f" after {attempt} attempt(s)",
                    http_status=status_code,
                    ncmec_code=code,
                    description=description,
                    request_id=request_id,
                )
            if answer is None or code is None:
                error_kind = CyberTiplineRefused if status_code >= 400 else CyberTiplineError
                if status_code < 400 and not repeatable:  # it may have opened a report we cannot name
                    error_kind = CyberTiplineOutcomeUnknown
                raise error_kind(
                    endpoint,
                    f"HTTP {status_code} without a readable CyberTipline answer",
                    http_status=status_code,
                    request_id=request_id,
                )
            if code != 0 or status_code >= 400:
                raise CyberTiplineRefused(
                    endpoint,
                    _failure_text(status_code, code, description),
                    http_status=status_code,
                    ncmec_code=code,
                    description=description,
                    request_id=request_id,
                )
            return answer, request_id

    async def _exchange(
        self, method: str, url: str, request: dict[str, Any]
    ) -> tuple[int, str | None, bytes | None]:
        """One HTTP exchange: the status, the Request-ID and the body, None when the body is larger than
        any CyberTipline answer (it is not read further: a huge or endless body costs nothing). An answer
        that does not arrive within the deadline raises httpx.ReadTimeout."""
        try:
            async with asyncio.timeout(self._answer_deadline):
                async with self._http.stream(method, url, **request) as response:
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > MAX_RESPONSE_BYTES:
                            return response.status_code, response.headers.get("Request-ID"), None
                    return response.status_code, response.headers.get("Request-ID"), bytes(body)
        except TimeoutError:
            raise httpx.ReadTimeout("the answer did not arrive in time") from None

    def _record(
        self,
        endpoint: str,
        attempt: int,
        http_status: int | None,
        code: int | None,
        request_id: str | None,
        report_id: int | None,
        file_id: str | None,
        error: Exception | None,
        started: float,
    ) -> None:
        record = CallRecord(
            endpoint=endpoint,
            attempt=attempt,
            http_status=http_status,
            response_code=code,
            request_id=request_id,
            report_id=report_id,
            file_id=file_id,
            error=type(error).__name__ if error is not None else None,
            seconds=time.monotonic() - started,
        )
        log.info(
            "cybertipline /%s attempt=%d http=%s code=%s request_id=%s error=%s",
            endpoint,
            attempt,
            http_status,
            code,
            request_id,
            record.error,
        )
        if self._recorder is not None:
            self._recorder(record)


def _id_form(report_id: int) -> dict[str, Any]:
    # A multipart form with the single field `id` (a part without a filename is a plain field).
    return {"files": {"id": (None, str(report_id))}}


def _parse(body: bytes) -> CyberTiplineResponse | None:
    """The parsed answer; None when the body is not a readable CyberTipline answer (an HTML error page
    from a proxy, a truncated body, hostile XML)."""
    try:
        return parse_response(body)
    except CyberTiplineResponseError:
        return None


def _clip(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_DESCRIPTION_CHARS else flat[: MAX_DESCRIPTION_CHARS - 3] + "..."


def _failure_text(http_status: int, code: int | None, description: str) -> str:
    if code is None:
        return f"HTTP {http_status}"
    return f"NCMEC code {code} ({description or 'no description'}), HTTP {http_status}"

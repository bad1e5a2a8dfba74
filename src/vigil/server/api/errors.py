"""Every error answer is `{"error": code, "detail": ...}`. Request values are never echoed back, so
nothing a client sent (ciphertext, keys) lands in an error body or a log line."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from vigil.errors import (
    AuthenticationError,
    ConflictError,
    GoneError,
    NotFoundError,
    PermissionDenied,
    ProtocolError,
    ValidationError,
    VigilError,
)
from vigil.protocol.wire import ErrorBody
from vigil.server.access_log import route_template
from vigil.server.capacity import (
    DEPENDENCY_RETRY_AFTER_S,
    InsufficientStorage,
    PayloadTooLarge,
    RateLimited,
    Unavailable,
    dependency_unreachable,
)
from vigil.server.services.messaging import StaleDevicesError

__all__ = [
    "ERROR_RESPONSES",
    "answer_error",
    "documented_errors",
    "error_response",
    "install_error_handlers",
    "status_for",
    "validation_details",
]

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    410: "gone",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "unavailable",
    507: "insufficient_storage",
}
_DESCRIPTIONS = {
    400: "malformed request",
    413: "the body is larger than the server accepts",
    422: "a field is out of bounds or malformed; `detail` names it",
    429: "rate limited; see Retry-After",
    503: "the database is unreachable; see Retry-After",
    507: "no room for the blob: the account's quota of unfetched blobs or the disk reserve is used up",
}


def documented_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these statuses, in this module's format."""
    return {status: {"model": ErrorBody, "description": _DESCRIPTIONS[status]} for status in statuses}


# Every route's errors in the OpenAPI schema (FastAPI's default 422 schema is not what the server sends).
ERROR_RESPONSES = documented_errors(400, 422, 429, 503)
# Errors a lost database surfaces as, whatever the driver: `dependency_unreachable` sorts them.
_DEPENDENCY_ERRORS: tuple[type[Exception], ...] = (
    sa_exc.DBAPIError,
    sa_exc.TimeoutError,
    sa_exc.DisconnectionError,
    ConnectionError,
    TimeoutError,
)


def status_for(error: VigilError) -> int:
    match error:
        case AuthenticationError():
            return 401
        case PermissionDenied():
            return 403
        case GoneError():
            return 410
        case NotFoundError():
            return 404
        case ConflictError():
            return 409
        case PayloadTooLarge():
            return 413
        case RateLimited():
            return 429
        case Unavailable():
            return 503
        case InsufficientStorage():
            return 507
        case ValidationError() | ProtocolError():
            return 400
        case _:
            return 400


def error_response(
    status: int, code: str, detail: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def validation_details(
    errors: Sequence[Mapping[str, Any]], prefix: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """`detail` of a 422: where each error is (`prefix`, e.g. `body`, then the field path) and what it is;
    never the input."""
    return [
        {
            "loc": [*prefix, *(str(part) for part in item.get("loc", ()))],
            "msg": str(item.get("msg", "invalid")),
        }
        for item in errors
    ]


async def _on_vigil_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, VigilError)
    if isinstance(error, StaleDevicesError):
        return JSONResponse(error.body.model_dump(mode="json"), status_code=409)
    status = status_for(error)
    headers: dict[str, str] | None = None
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    elif isinstance(error, RateLimited | Unavailable):
        headers = {"Retry-After": str(error.retry_after_s)}
    return error_response(status, error.code, error.detail, headers)


async def _on_request_validation(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    if any(item.get("type") == "json_invalid" for item in error.errors()):
        return error_response(400, "malformed_json", "the request body is not valid JSON")
    return error_response(422, "invalid_request", validation_details(error.errors()))


async def _on_http_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    code = _HTTP_CODES.get(error.status_code, "http_error")
    return error_response(error.status_code, code, error.detail, getattr(error, "headers", None))


async def _on_dependency_error(request: Request, error: Exception) -> JSONResponse:
    if not dependency_unreachable(error):
        return await _on_unexpected(request, error)
    log.warning(
        "database unreachable (%s) on %s %s",
        type(error).__name__,
        request.method,
        route_template(request.scope),
    )
    return error_response(
        503,
        "unavailable",
        "the database is unreachable; retry later",
        {"Retry-After": str(DEPENDENCY_RETRY_AFTER_S)},
    )


async def _on_unexpected(request: Request, error: Exception) -> JSONResponse:
    # The type only: an exception's message could carry request data.
    log.error("unhandled %s on %s %s", type(error).__name__, request.method, route_template(request.scope))
    return error_response(500, "internal", "internal server error")


_Handler = Callable[[Request, Exception], Awaitable[JSONResponse]]
_HANDLERS: dict[type[Exception], _Handler] = {
    VigilError: _on_vigil_error,
    RequestValidationError: _on_request_validation,
    StarletteHTTPException: _on_http_error,
    **dict.fromkeys(_DEPENDENCY_ERRORS, _on_dependency_error),
    Exception: _on_unexpected,
}


def install_error_handlers(app: FastAPI) -> None:
    for error_type, handler in _HANDLERS.items():
        app.add_exception_handler(error_type, handler)


async def answer_error(request: Request, error: Exception) -> JSONResponse:
    """The answer `install_error_handlers` gives `error`, for a route served outside Starlette's
    exception middleware (`api.messages.serve_send`): the handler of the nearest class in the error's
    MRO, as Starlette picks it."""
    handler = next(_HANDLERS[kind] for kind in type(error).__mro__ if kind in _HANDLERS)
    return await handler(request, error)

"""Every error answer is `{"error": code, "detail": ...}`. Request values are never echoed back, so
nothing a client sent (ciphertext, keys) lands in an error body or a log line."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from vigil.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDenied,
    ProtocolError,
    ValidationError,
    VigilError,
)
from vigil.server.services.messaging import StaleDevicesError

__all__ = ["error_response", "install_error_handlers", "status_for"]

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
}


def status_for(error: VigilError) -> int:
    match error:
        case AuthenticationError():
            return 401
        case PermissionDenied():
            return 403
        case NotFoundError():
            return 404
        case ConflictError():
            return 409
        case ValidationError() | ProtocolError():
            return 400
        case _:
            return 400


def error_response(
    status: int, code: str, detail: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def _validation_details(error: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": [str(part) for part in item.get("loc", ())], "msg": str(item.get("msg", "invalid"))}
        for item in error.errors()
    ]


async def _on_vigil_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, VigilError)
    if isinstance(error, StaleDevicesError):
        return JSONResponse(error.body.model_dump(mode="json"), status_code=409)
    status = status_for(error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return error_response(status, error.code, error.detail, headers)


async def _on_request_validation(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    if any(item.get("type") == "json_invalid" for item in error.errors()):
        return error_response(400, "malformed_json", "the request body is not valid JSON")
    return error_response(422, "invalid_request", _validation_details(error))


async def _on_http_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    code = _HTTP_CODES.get(error.status_code, "http_error")
    return error_response(error.status_code, code, error.detail, getattr(error, "headers", None))


async def _on_unexpected(request: Request, error: Exception) -> JSONResponse:
    # The type only: an exception's message could carry request data.
    log.error("unhandled %s on %s %s", type(error).__name__, request.method, request.url.path)
    return error_response(500, "internal", "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(VigilError, _on_vigil_error)
    app.add_exception_handler(RequestValidationError, _on_request_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)

"""The access log without identifiers (issue 16): one line per request with the method, the route
template (`/v1/users/{username}/photo`, never the path that carries a username, group, blob or case id)
and the status; never the client's address or the query string. uvicorn's own access log is off
(`serving.uvicorn_options`), and its WebSocket lines, which carry the client's address, are dropped by
`DropClientAddressLines` in the log configuration the server runs with."""

from __future__ import annotations

import copy
import logging
from http import HTTPStatus
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["AccessLog", "DropClientAddressLines", "log_config", "route_template"]

log = logging.getLogger("vigil.access")

UNMATCHED = "<unmatched>"  # no route: the raw path could be anything the client typed


def route_template(scope: Scope) -> str:
    """The matched route's template, under the prefix of the app it is mounted in; UNMATCHED if none."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(template, str):
        return UNMATCHED
    prefix = scope.get("root_path", "")  # a mounted app's routes sit under its mount path
    return f"{prefix}{template}" if isinstance(prefix, str) else template


class AccessLog:
    """Pure ASGI middleware: logs `METHOD template status` once the response has started (HTTP) or the
    socket is accepted or refused (WebSocket)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        status: list[str] = []

        async def watch(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                status.append(_status_line(int(message["status"])))
            elif kind == "websocket.accept" and not status:
                status.append("accepted")
            elif kind == "websocket.close" and not status:
                status.append(f"closed {message.get('code', 1000)}")
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            method = scope.get("method", "WEBSOCKET") if scope["type"] == "http" else "WEBSOCKET"
            log.info("%s %s %s", method, route_template(scope), status[0] if status else "no response")


def _status_line(status: int) -> str:
    """`500 Internal Server Error`: the code and its phrase, as uvicorn's access log wrote it."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


class DropClientAddressLines(logging.Filter):
    """Drops uvicorn's WebSocket lines (`<client address> - "WebSocket <path>" ...`): `AccessLog`
    already logs them without the address and with the route template instead of the path."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith('%s - "WebSocket'))


def log_config(level: str = "info") -> dict[str, Any]:
    """uvicorn's logging configuration, plus the `vigil` loggers at `level` on the same handler, and the
    filter that drops lines carrying client addresses."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"drop_client_addresses": {"()": DropClientAddressLines}}
    config["handlers"]["default"]["filters"] = ["drop_client_addresses"]
    config["loggers"]["vigil"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config

"""How uvicorn serves the app: the options `vigil serve` and the embedded server pass, so that both cut
off slow clients the same way.

uvicorn closes idle keep-alive connections but has no limit on how long request headers may take: a
client that opens connections and sends headers a byte at a time (slowloris) holds them forever.
`HeaderTimeoutProtocol` closes a connection whose request headers are not complete within the limit.
Slow bodies are cut off by `vigil.server.api.limits.RequestBodyLimits`.
"""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from vigil.server.access_log import log_config
from vigil.server.settings import Settings

__all__ = ["HeaderTimeoutProtocol", "uvicorn_options"]

# Seconds an idle keep-alive connection stays open between requests (uvicorn's own default).
_KEEP_ALIVE_S = 5


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing connections whose request headers take too long: from the
    connection's start for the first request, from its first byte for the next ones."""

    def __init__(self, *args: Any, header_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout_s = header_timeout_s
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        """A request the HTTP parser refuses (a control byte in a header, a malformed request line) gets
        the API's JSON error body like every other refusal, not uvicorn's plain text; the connection then
        closes, as uvicorn's does (the parser cannot find the next request's start)."""
        del msg  # uvicorn's text; the body below says the same in the API's format
        body = json.dumps({"error": "bad_request", "detail": "malformed HTTP request"}).encode()
        head = [b"HTTP/1.1 400 Bad Request\r\n"]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self._header_timeout_s, self._on_header_timeout)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _on_header_timeout(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def uvicorn_options(settings: Settings, log_level: str = "info") -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run` / `uvicorn.Config`. Picklable, for worker processes. uvicorn's
    access log is off: it records client addresses and raw paths; `vigil.server.access_log.AccessLog`
    logs route templates and statuses instead, through the `vigil` loggers at `log_level`."""
    timeout_s = settings.request_header_timeout_seconds
    protocol = functools.partial(HeaderTimeoutProtocol, header_timeout_s=timeout_s)
    return {
        "http": protocol,
        "timeout_keep_alive": _KEEP_ALIVE_S,
        "access_log": False,
        # No permessage-deflate on WebSocket frames: they are almost all base64 ciphertext, and deflating
        # every push and inflating every ack took ~10% of the server's samples in a 500-device fan-out.
        "ws_per_message_deflate": False,
        "log_level": log_level,
        "log_config": log_config(log_level),
    }

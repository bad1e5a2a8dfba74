"""Limits on request bodies, enforced while the body is read (pure ASGI, so streaming uploads and
WebSockets pass through untouched): a size limit checked before a body is read into memory, and a
time limit for a body that stops arriving (a client holding a connection with a stalled upload)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["RequestBodyLimits"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _BodyRefused(Exception):
    """The body broke a limit. Not a TimeoutError: the app's handlers take those for a database outage."""


class RequestBodyLimits:
    def __init__(
        self,
        app: ASGIApp,
        *,
        default_limit: int,
        blob_limit: int,
        stall_timeout_s: float,
        blob_prefix: str = "/v1/blobs",
    ) -> None:
        self._app = app
        self._default = default_limit
        self._blob = blob_limit
        self._stall_timeout_s = stall_timeout_s
        self._blob_prefix = blob_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        limit = self._blob if str(scope.get("path", "")).startswith(self._blob_prefix) else self._default
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _reply(send, 400, "bad_request", "Content-Length is not a number")
                    return
                if declared > limit:
                    await _reply(send, 413, "too_large", f"request body is larger than {limit} bytes")
                    return
        received = 0
        response_started = False
        # Set when the body broke a limit: (status, code, detail, close the connection).
        refusal: tuple[int, str, str, bool] | None = None

        async def limited_receive() -> Message:
            nonlocal received, refusal
            try:
                async with asyncio.timeout(self._stall_timeout_s):
                    message = await receive()
            except TimeoutError:
                detail = f"the request body stalled for more than {self._stall_timeout_s:g} s"
                # The rest of the body may still come: it must not be read as the next request.
                refusal = (408, "request_timeout", detail, True)
                raise _BodyRefused from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refusal = (413, "too_large", f"request body is larger than {limit} bytes", False)
                    raise _BodyRefused
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if refusal is not None:
                # The app answered a body it never got whole (FastAPI turns a failed body read into a
                # 400): the client is told the real reason instead.
                if message["type"] == "http.response.start" and not response_started:
                    response_started = True
                    await _reply(send, *refusal)
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self._app(scope, limited_receive, tracking_send)
        except _BodyRefused:
            if not response_started and refusal is not None:
                await _reply(send, *refusal)


async def _reply(send: Send, status: int, code: str, detail: str, close: bool = False) -> None:
    body = json.dumps({"error": code, "detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

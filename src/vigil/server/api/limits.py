"""Body size limits enforced before a body is read into memory (pure ASGI, so streaming uploads and
WebSockets pass through untouched)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["BodySizeLimit"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    def __init__(
        self, app: ASGIApp, *, default_limit: int, blob_limit: int, blob_prefix: str = "/v1/blobs"
    ) -> None:
        self._app = app
        self._default = default_limit
        self._blob = blob_limit
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

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self._app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not response_started:
                await _reply(send, 413, "too_large", f"request body is larger than {limit} bytes")


async def _reply(send: Send, status: int, code: str, detail: str) -> None:
    body = json.dumps({"error": code, "detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})

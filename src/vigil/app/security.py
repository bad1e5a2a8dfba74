"""Who may talk to the local app: only the browser that was given this launch's secret.

The secret (32 random bytes) is in the URL the command opens; the first request carrying it gets an
HttpOnly, SameSite=Strict cookie holding it and is redirected to the same page without it (so it leaves
the address bar and the history). Every later request must carry the cookie. The Host header must name
the loopback address and port we listen on (a DNS-rebinding page cannot pass), and a request that changes
anything must come with an Origin of exactly that address (no other site's page can post to us). Every
response forbids framing, inline script and connections anywhere but here."""

from __future__ import annotations

import hmac
import secrets
from http.cookies import SimpleCookie
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CSP", "LaunchGuard", "new_secret"]

CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
KEY_PARAM: Final = "key"
_SAFE_METHODS: Final = frozenset({"GET", "HEAD"})


def new_secret() -> str:
    return secrets.token_urlsafe(32)


class LaunchGuard:
    def __init__(self, app: ASGIApp, secret: str, port_holder: dict[str, int]) -> None:
        self.app = app
        self.secret = secret
        self.port_holder = port_holder  # filled once the socket is bound
        self.cookie_name = "vigil_app"

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port_holder['port']}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        port = self.port_holder["port"]
        if headers.get("host") not in (f"127.0.0.1:{port}", f"localhost:{port}"):
            await _refuse(send, 421, "this app answers only on its loopback address")
            return
        query = dict(parse_qsl(scope.get("query_string", b"").decode()))
        offered = query.get(KEY_PARAM)
        if offered is not None and scope["method"] in _SAFE_METHODS:
            if not hmac.compare_digest(offered.encode(), self.secret.encode()):
                await _refuse(send, 403, "wrong launch key: use the address `vigil app` printed")
                return
            rest = urlencode([(k, v) for k, v in query.items() if k != KEY_PARAM])
            location = scope["path"] + (f"?{rest}" if rest else "")
            cookie = (
                f"{self.cookie_name}={self.secret}; Path=/; HttpOnly; SameSite=Strict"  # loopback: no Secure
            )
            await _respond(
                send, 303, b"", [(b"location", location.encode()), (b"set-cookie", cookie.encode())]
            )
            return
        jar: SimpleCookie = SimpleCookie()
        jar.load(headers.get("cookie", ""))
        held = jar.get(self.cookie_name)
        if held is None or not hmac.compare_digest(held.value.encode(), self.secret.encode()):
            await _refuse(send, 403, "open the address `vigil app` printed (it carries this launch's key)")
            return
        if scope["method"] not in _SAFE_METHODS and headers.get("origin") != self.origin:
            await _refuse(send, 403, "refused: the request did not come from this app's own page")
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra: list[Any] = [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),  # no-referrer would make Origin "null"
                    (b"cache-control", b"no-store"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                    (b"cross-origin-resource-policy", b"same-origin"),
                ]
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, with_headers)


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _refuse(send: Send, status: int, detail: str) -> None:
    import json

    body = json.dumps({"error": "forbidden" if status == 403 else "misdirected", "detail": detail}).encode()
    await _respond(
        send,
        status,
        body,
        [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    )

"""The launch guard in front of the local app: the launch key (then its cookie) on every request, the
loopback Host, a same-origin Origin on every change, and the security headers."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from vigil.app.security import CSP, LaunchGuard

PORT = 48123
ORIGIN = f"http://127.0.0.1:{PORT}"


def _client() -> httpx.AsyncClient:
    inner = FastAPI()

    @inner.get("/page")
    async def page() -> PlainTextResponse:
        return PlainTextResponse("the page")

    @inner.post("/change")
    async def change() -> PlainTextResponse:
        return PlainTextResponse("changed")

    guarded = LaunchGuard(inner, "s3cret-launch-key", {"port": PORT})
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=guarded), base_url=ORIGIN)


async def test_nothing_answers_without_the_key_or_with_a_wrong_one() -> None:
    async with _client() as http:
        refused = await http.get("/page")
        assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
        assert "the page" not in refused.text
        assert (await http.get("/page?key=s3cret-launch-kez")).status_code == 403
        forged = await http.get("/page", headers={"Cookie": "vigil_app=guess"})
        assert forged.status_code == 403


async def test_the_key_becomes_a_strict_httponly_cookie_and_leaves_the_address() -> None:
    async with _client() as http:
        first = await http.get("/page?key=s3cret-launch-key&x=1")
        assert first.status_code == 303 and first.headers["location"] == "/page?x=1"
        cookie = first.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        page = await http.get("/page")  # httpx kept the cookie
        assert page.status_code == 200 and page.text == "the page"
        assert page.headers["content-security-policy"] == CSP
        assert "'unsafe" not in CSP and "frame-ancestors 'none'" in CSP
        assert page.headers["x-frame-options"] == "DENY"


async def test_another_host_is_refused_even_with_the_cookie() -> None:
    async with _client() as http:
        await http.get("/page?key=s3cret-launch-key")
        rebound = await http.get("/page", headers={"Host": f"attacker.example:{PORT}"})
        assert rebound.status_code == 421
        other_port = await http.get("/page", headers={"Host": "127.0.0.1:1"})
        assert other_port.status_code == 421


async def test_a_change_needs_this_apps_origin() -> None:
    async with _client() as http:
        await http.get("/page?key=s3cret-launch-key")
        assert (await http.post("/change")).status_code == 403  # no Origin
        cross = await http.post("/change", headers={"Origin": "http://evil.example"})
        assert cross.status_code == 403
        assert (await http.post("/change", headers={"Origin": "null"})).status_code == 403
        ok = await http.post("/change", headers={"Origin": ORIGIN})
        assert ok.status_code == 200 and ok.text == "changed"
        # the key in the query does not authorise a change by itself
        keyed = await httpx.AsyncClient(transport=http._transport, base_url=ORIGIN).post(
            "/change?key=s3cret-launch-key", headers={"Origin": ORIGIN}
        )
        assert keyed.status_code == 403

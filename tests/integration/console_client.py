"""A reviewer's browser without a browser: the mounted console over HTTP, for integration tests."""

from __future__ import annotations

import re

import httpx

PASSWORD = "a long reviewer password"


class Console:
    """A signed-in reviewer's browser, by hand: the console's cookies are `Secure`, which httpx's jar
    withholds over plain http even on loopback (a browser does not)."""

    def __init__(self, url: str) -> None:
        self.http = httpx.AsyncClient(base_url=f"{url}/console")
        self.cookies: dict[str, str] = {}
        self.csrf = ""

    def _keep(self, response: httpx.Response) -> None:
        for header in response.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0]
            if value and "Max-Age=0" not in header:
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)

    async def request(self, method: str, path: str, data: dict[str, str] | None = None) -> httpx.Response:
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        response = await self.http.request(method, path, data=data, headers={"Cookie": cookie})
        self._keep(response)
        return response

    async def sign_in(self, name: str) -> None:
        page = await self.request("GET", "/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token is not None
        signed = await self.request(
            "POST", "/login", {"csrf": token[1], "username": name, "password": PASSWORD}
        )
        assert signed.status_code in (302, 303), signed.text
        queue = await self.request("GET", "/queue")
        found = re.search(r'name="csrf" value="([^"]+)"', queue.text)
        assert queue.status_code == 200 and found is not None
        self.csrf = found[1]

    async def post(self, path: str, **fields: str) -> httpx.Response:
        return await self.request("POST", path, {"csrf": self.csrf, **fields})

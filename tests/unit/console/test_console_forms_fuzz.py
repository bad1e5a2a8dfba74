"""Every console form, posted by a signed-in admin with a valid CSRF token but hostile values (unknown
choices, huge and negative numbers, NUL bytes, lone surrogates, long strings, repeated fields) and hostile
path ids: each is refused with a 4xx page (or handled), never a 500, and never echoes a secret."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from urllib.parse import urlencode

from starlette.routing import Route
from starlette.testclient import TestClient

from vigil.console.app import create_console_app
from vigil.console.auth import Role, create_reviewer
from vigil.console.routes import ROUTERS
from vigil.protocol.reports import ReportReason
from vigil.protocol.wire import AgeBand
from vigil.server.db.accounts import UserRow
from vigil.server.offline import offline_context
from vigil.server.services.cases import open_or_join_case
from vigil.server.settings import Settings

PASSWORD = "a password for the tests"
FIELDS = (
    "action active assignee blur case code confirm days disabled enabled exchange format into kind label "
    "name next note outcome policy queue reason report role threshold title username password file"
).split()
HOSTILE_VALUES = ["9" * 40, "-1", "0", "\x00", "\ud800", "x" * 100_000, "ñ" * 50, "", "1e999", "nan"]
HOSTILE_IDS = ["9" * 40, "-1", "0", "%00", "x" * 2000, "1"]


async def _seed(settings: Settings) -> int:
    async with offline_context(settings) as ctx:
        await create_reviewer(ctx, "ada", PASSWORD, Role.ADMIN, "test")
        async with ctx.sessions() as session, session.begin():
            user = UserRow(username="mallory", age_band=AgeBand.ADULT.value, created_at_ms=1)
            session.add(user)
            await session.flush()
            return (await open_or_join_case(session, user, ReportReason.SPAM, 10, False, 1)).id


def test_hostile_console_forms_get_no_server_error(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    case_id = asyncio.run(_seed(settings))
    app = create_console_app(settings)
    posts = [
        route.path
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, Route) and "POST" in (route.methods or set()) and route.path != "/login"
    ]
    assert "/cases/{case_id}/action" in posts
    problems: list[str] = []
    with TestClient(app, base_url="https://console.test", raise_server_exceptions=False) as http:
        page = http.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token is not None
        signed = http.post("/login", data={"csrf": token[1], "username": "ada", "password": PASSWORD})
        csrf = re.search(r'name="csrf" value="([^"]+)"', signed.text)
        assert csrf is not None
        for path in posts:
            if path == "/logout":
                continue
            ids = [str(case_id)] if "{" in path else [""]
            if "{" in path:
                ids += HOSTILE_IDS
            for id_value in ids:
                concrete = re.sub(r"\{[a-z_]+\}", id_value, path) if id_value else path
                for value in HOSTILE_VALUES:
                    raw = value.encode("utf-8", "surrogatepass")  # a lone surrogate's bytes too
                    body = urlencode({"csrf": csrf[1], **dict.fromkeys(FIELDS, raw)})
                    response = http.post(
                        concrete,
                        content=body,
                        headers={"Content-Type": "application/x-www-form-urlencoded"},
                    )
                    if response.status_code >= 500:
                        problems.append(f"{concrete[:60]} value={value[:10]!r}: {response.status_code}")
                    if PASSWORD in response.text:
                        problems.append(f"{concrete[:60]}: echoes a password")
    assert problems == [], "\n".join(problems)

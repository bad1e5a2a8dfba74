"""`console/deps.py` through the standalone console app in-process: no session, wrong role, bad CSRF,
and the order of the checks (session, then CSRF, then role)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from vigil.console.app import create_console_app
from vigil.console.auth import Role, create_reviewer
from vigil.server.offline import offline_context
from vigil.server.settings import Settings

PASSWORD = "a password for the tests"


async def _reviewers(settings: Settings) -> None:
    async with offline_context(settings) as ctx:
        await create_reviewer(ctx, "rita", PASSWORD, Role.REVIEWER, "test")
        await create_reviewer(ctx, "lena", PASSWORD, Role.LEAD, "test")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings(data_dir=tmp_path)
    asyncio.run(_reviewers(settings))
    return settings


def _sign_in(http: TestClient, name: str) -> str:
    """Signs in; returns the session's CSRF token."""
    token = re.search(r'name="csrf" value="([^"]+)"', http.get("/login").text)
    assert token is not None
    signed = http.post("/login", data={"csrf": token[1], "username": name, "password": PASSWORD})
    assert signed.status_code == 200, signed.text
    found = re.search(r'name="csrf" value="([^"]+)"', signed.text)
    assert found is not None
    return found[1]


def test_without_a_session_pages_redirect_to_sign_in_and_posts_are_refused(settings: Settings) -> None:
    with TestClient(create_console_app(settings), base_url="https://console.test") as http:
        for path in ("/", "/queue", "/cases/1", "/audit", "/banks", "/admin/reviewers", "/items/1/image"):
            page = http.get(path, follow_redirects=False)
            assert page.status_code == 303 and page.headers["location"] == "/login", path
        for path in ("/logout", "/cases/1/notes", "/vouchers/open", "/banks", "/admin/reviewers"):
            refused = http.post(path, data={"csrf": "anything"})
            assert refused.status_code == 403 and "Your session has ended." in refused.text, path
        http.cookies.set("vigil_console", "not-a-session", domain="console.test")
        assert http.get("/queue", follow_redirects=False).status_code == 303


def test_a_role_below_the_page_s_is_refused(settings: Settings) -> None:
    with TestClient(create_console_app(settings), base_url="https://console.test") as http:
        csrf = _sign_in(http, "rita")
        assert http.get("/queue").status_code == 200
        audit = http.get("/audit")
        assert audit.status_code == 403 and "this page needs the lead role" in audit.text
        assert http.get("/admin/reviewers").status_code == 403
        reopen = http.post("/cases/1/reopen", data={"csrf": csrf})
        assert reopen.status_code == 403 and "this page needs the lead role" in reopen.text
        assign = http.post("/cases/1/assign", data={"csrf": csrf, "assignee": "7"})
        assert assign.status_code == 403 and "this page needs the lead role" in assign.text
    with TestClient(create_console_app(settings), base_url="https://console.test") as http:
        _sign_in(http, "lena")
        assert http.get("/audit").status_code == 200
        admin_only = http.get("/admin/reviewers")
        assert admin_only.status_code == 403 and "this page needs the admin role" in admin_only.text


def test_a_post_without_the_session_s_csrf_token_is_refused_before_the_role_check(settings: Settings) -> None:
    with TestClient(create_console_app(settings), base_url="https://console.test") as http:
        csrf = _sign_in(http, "rita")
        for data in ({}, {"csrf": ""}, {"csrf": csrf[:-1] + ("A" if csrf[-1] != "A" else "B")}):
            refused = http.post("/cases/1/notes", data={**data, "note": "hi"})
            assert refused.status_code == 403 and "CSRF" in refused.text, data
            # CSRF is checked before the role: a reviewer's forged lead action reads as a CSRF failure.
            forged = http.post("/cases/1/reopen", data=data)
            assert forged.status_code == 403 and "CSRF" in forged.text, data
        assert http.post("/logout", data={}).status_code == 403
        assert http.get("/queue").status_code == 200  # still signed in
        missing = http.post("/cases/999/notes", data={"csrf": csrf, "note": "hi"})
        assert missing.status_code == 404  # past every check, the service answers

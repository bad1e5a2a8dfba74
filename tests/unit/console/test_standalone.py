"""`vigil console serve` without a server process: its own context, sign-in redirect, headers."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from vigil.console.app import CSP, create_console_app
from vigil.server.settings import Settings


def test_standalone_console_migrates_and_redirects_to_sign_in(tmp_path: Path) -> None:
    app = create_console_app(Settings(data_dir=tmp_path))
    with TestClient(app, base_url="https://console.test") as http:
        queue = http.get("/queue", follow_redirects=False)
        assert queue.status_code == 303 and queue.headers["location"] == "/login"
        login = http.get("/login")
        assert login.status_code == 200 and login.headers["content-security-policy"] == CSP
        assert (
            "vigil_console_login" in login.headers["set-cookie"] and "Secure" in login.headers["set-cookie"]
        )
        assert http.post("/cases/1/action", data={"action": "suspend"}).status_code == 403
        assert http.get("/static/console.css").headers["content-type"].startswith("text/css")

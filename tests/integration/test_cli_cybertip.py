"""`vigil cybertip status` against a real `vigil cybertip stand-in` process on a free loopback port: exit 0
with one line when the credentials are accepted, exit 1 with one line when refused or unreachable, and
the password never printed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cli_runner import vigil
from cybertip_helpers import PASSWORD, USER, running_stand_in
from live_server import free_port


@pytest.fixture(scope="module")
def stand_in() -> Iterator[str]:
    with running_stand_in() as running:
        yield running.url


def _env(url: str, password: str, tmp_path: Path) -> dict[str, str]:
    return {
        "VIGIL_DATA_DIR": str(tmp_path),
        "VIGIL_ENVIRONMENT": "dev",
        "VIGIL_CYBERTIPLINE_URL": url,
        "VIGIL_CYBERTIPLINE_USERNAME": USER,
        "VIGIL_CYBERTIPLINE_PASSWORD": password,
    }


def test_status_with_the_right_credentials_exits_0_with_the_request_id(stand_in: str, tmp_path: Path) -> None:
    ran = vigil("cybertip", "status", env=_env(stand_in, PASSWORD, tmp_path))
    assert ran.returncode == 0, ran.stderr
    (line,) = ran.stdout.splitlines()
    assert line.startswith(f"CyberTipline {stand_in}: reachable, credentials accepted")
    assert "Request-ID " in line and "Request-ID none" not in line
    assert PASSWORD not in ran.stdout + ran.stderr
    seen = httpx.get(f"{stand_in}/_standin/reports", timeout=5).json()["calls"]
    assert seen[-1]["endpoint"] == "status" and seen[-1]["request_id"] in line


def test_status_with_a_wrong_password_exits_1_with_ncmecs_code(stand_in: str, tmp_path: Path) -> None:
    wrong = "wrong-" + PASSWORD
    ran = vigil("cybertip", "status", env=_env(stand_in, wrong, tmp_path))
    assert ran.returncode == 1
    (line,) = ran.stderr.splitlines()
    assert line.startswith("error: cybertipline_refused: /status: NCMEC code 2000")
    assert "HTTP 401" in line and "Request-ID" in line
    assert wrong not in ran.stdout + ran.stderr and PASSWORD not in ran.stdout + ran.stderr


def test_status_when_unreachable_exits_1_with_one_line(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    ran = vigil("cybertip", "status", "--attempts", "1", env=_env(closed, PASSWORD, tmp_path))
    assert ran.returncode == 1
    (line,) = ran.stderr.splitlines()
    assert line.startswith(
        f"error: cybertipline_unavailable: /status: {closed} unreachable after 1 attempt(s)"
    )
    assert PASSWORD not in ran.stderr


def test_status_refuses_the_production_url_in_dev(tmp_path: Path) -> None:
    env = _env("https://report.cybertip.org/ispws", PASSWORD, tmp_path)
    ran = vigil("cybertip", "status", env=env)
    assert ran.returncode == 1
    (line,) = ran.stderr.splitlines()
    assert line.startswith("error: Value error, VIGIL_CYBERTIPLINE_URL is NCMEC's production CyberTipline")
    assert PASSWORD not in line

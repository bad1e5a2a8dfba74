"""Every CLI failure is one readable line and a non-zero exit; `vigil --debug` shows the traceback. A
damaged device store is reported as corruption, with its path."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from cli_runner import vigil


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp_path: Path) -> dict[str, str]:
    return {"VIGIL_HOME": str(tmp_path / "home"), "VIGIL_PASSPHRASE": "cli test passphrase"}


def _one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def test_a_server_that_is_down_is_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    ran = vigil(
        "chat",
        "--profile",
        "p",
        "register",
        "someone",
        "--server",
        url,
        "--birth-date",
        "2000-01-01",
        env=_env(tmp_path),
    )
    assert ran.returncode == 1
    line = _one_line(ran.stderr)
    assert line.startswith("error: cannot reach http://127.0.0.1:") and "is the server running" in line


@pytest.mark.parametrize("born", ["2010-02-30", "17/03/2011", "2010-13-01", "3000-01-01", ""])
def test_a_bad_or_impossible_birth_date_is_one_line(tmp_path: Path, born: str) -> None:
    ran = vigil(
        "chat",
        "--profile",
        "p",
        "register",
        "someone",
        "--server",
        "http://127.0.0.1:9",
        "--birth-date",
        born,
        env=_env(tmp_path),
    )
    assert ran.returncode == 1
    assert "--birth-date" in _one_line(ran.stderr)
    assert not (tmp_path / "home" / "profiles" / "p.db").exists()  # refused before anything was made


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="not a real date"):
        vigil(
            "--debug",
            "chat",
            "--profile",
            "p",
            "register",
            "someone",
            "--birth-date",
            "2010-02-30",
            env=_env(tmp_path),
        )


def test_serve_with_an_unreachable_database_is_one_line_without_its_password(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://vigil:hunter2secret@127.0.0.1:{_closed_port()}/vigil"
    ran = vigil("serve", "--data-dir", str(tmp_path / "data"), env={"VIGIL_DATABASE_URL": url})
    assert ran.returncode == 1
    line = _one_line(ran.stderr)
    assert line.startswith("error: cannot reach the database at postgresql+asyncpg://vigil:***@127.0.0.1")
    assert "hunter2secret" not in ran.stderr + ran.stdout


@pytest.mark.parametrize("damage", ["not_sqlite", "flipped_salt"])
def test_a_corrupted_store_is_reported_as_corruption_with_its_path(tmp_path: Path, damage: str) -> None:
    from vigil.client.store import DeviceStore

    path = tmp_path / "home" / "profiles" / "p.db"
    if damage == "not_sqlite":
        path.parent.mkdir(parents=True)
        path.write_bytes(b"\x00garbage" * 1000)
    else:
        store = DeviceStore(path, "cli test passphrase")
        salt = store._meta_raw("salt")
        store.close()
        assert salt is not None
        data = bytearray(path.read_bytes())
        data[data.index(salt)] ^= 0x01
        path.write_bytes(bytes(data))
    ran = vigil("chat", "--profile", "p", "receive", env=_env(tmp_path))
    assert ran.returncode == 1
    line = _one_line(ran.stdout)
    assert "store_corrupted" in line and str(path) in line and "passphrase" not in line


def test_flags_show_no_value_placeholder_in_help() -> None:
    ran = vigil("chat", "verify", "--help")
    assert ran.returncode == 0
    lines = {line.split()[1]: line for line in ran.stdout.splitlines() if line.strip("│ ").startswith("--")}
    assert "<bool>" not in lines["--sas"] and "<bool>" not in lines["--help"]
    assert "<float>" in lines["--timeout"]  # options that take a value still show it
    assert "<bool>" not in vigil("chat", "receive", "--help").stdout

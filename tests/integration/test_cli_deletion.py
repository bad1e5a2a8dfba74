"""`vigil chat delete-device` and `vigil chat delete-account` against `vigil serve`: the user is told
what went and what was kept; the deleted profile can no longer act and its local store is gone."""

from __future__ import annotations

import re
from pathlib import Path

from cli_runner import vigil as _vigil
from helpers import unique
from live_server import start_server


def test_delete_a_device_then_the_account_from_the_command_line(tmp_path: Path) -> None:
    server, _ = start_server("sqlite", tmp_path)
    home = tmp_path / "home"
    env = {"VIGIL_HOME": str(home), "VIGIL_PASSPHRASE": "cli test passphrase"}
    name = unique("erin")
    try:
        registered = _vigil(
            "chat",
            "--profile",
            name,
            "register",
            name,
            "--server",
            server.url,
            "--birth-date",
            "1990-02-03",
            env=env,
        )
        assert registered.returncode == 0, registered.stdout + registered.stderr
        linked = _vigil("chat", "--profile", name, "link", "erin-laptop", env=env)
        assert linked.returncode == 0, linked.stdout + linked.stderr
        [device_id] = re.findall(r"linked device ([0-9a-f]{16})", linked.stdout)

        only = _vigil("chat", "--profile", name, "delete-device", "0123456789abcdef", env=env)
        assert only.returncode == 1 and "not_found" in only.stdout
        deleted = _vigil("chat", "--profile", name, "delete-device", device_id, env=env)
        assert deleted.returncode == 0, deleted.stdout + deleted.stderr
        assert "deleted" in deleted.stdout and "kept (nothing)" in deleted.stdout
        gone = _vigil("chat", "--profile", "erin-laptop", "receive", env=env)
        assert gone.returncode == 1 and "invalid device credential" in gone.stdout

        account = _vigil("chat", "--profile", name, "delete-account", "--yes", env=env)
        assert account.returncode == 0, account.stdout + account.stderr
        assert "the username" in account.stdout and f"profile {name} removed" in account.stdout
        assert not (home / "profiles" / f"{name}.db").exists()
    finally:
        server.stop()

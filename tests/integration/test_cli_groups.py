"""`vigil chat group ...` and `vigil chat verify` as a user runs them (in-process, `cli_runner`), against
`vigil serve`. The side answering a SAS verification runs as a real process, alongside."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from cli_runner import Ran, vigil
from helpers import unique
from live_server import start_server


def _vigil(*args: str, env: dict[str, str]) -> Ran:
    return vigil("chat", *args, env=env)


def _spawn(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vigil", "chat", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200", **env},
    )


def test_cli_group_and_verify(tmp_path: Path) -> None:
    server, _ = start_server("sqlite", tmp_path)
    env = {"VIGIL_HOME": str(tmp_path / "home"), "VIGIL_PASSPHRASE": "cli test passphrase"}
    alice, bob, carol = unique("alice"), unique("bob"), unique("carol")
    try:
        for name in (alice, bob, carol):
            register = ("register", name, "--server", server.url, "--birth-date", "1990-02-03")
            done = _vigil("--profile", name, *register, env=env)
            assert done.returncode == 0, done.stdout + done.stderr
        created = _vigil("--profile", alice, "group", "create", bob, carol, "--name", "Climbing", env=env)
        assert created.returncode == 0, created.stdout + created.stderr
        group = re.search(r"created group ([a-f0-9]{32})", created.stdout).group(1)
        sent = _vigil("--profile", alice, "group", "send", group, "rope at 6?", env=env)
        assert "sent to 2 device(s)" in sent.stdout, sent.stdout + sent.stderr
        received = _vigil("--profile", bob, "receive", env=env)
        assert "'Climbing'" in received.stdout and f"{alice}: rope at 6?" in received.stdout, received.stdout
        listed = _vigil("--profile", bob, "group", "list", env=env)
        assert group in listed.stdout and "Climbing" in listed.stdout and "member" in listed.stdout
        refused = _vigil("--profile", bob, "group", "remove", group, carol, env=env)
        assert refused.returncode == 1 and "forbidden" in refused.stdout
        removed = _vigil("--profile", alice, "group", "remove", group, carol, env=env)
        assert removed.returncode == 0 and "new group key" in removed.stdout
        # Back by invite link: the admin issues one, carol joins with its token; once revoked, it is gone.
        linked = _vigil("--profile", alice, "group", "link", group, env=env)
        assert linked.returncode == 0, linked.stdout + linked.stderr
        token = re.search(r"invite token: ([A-Za-z0-9_-]{43})", linked.stdout).group(1)
        joined = _vigil("--profile", carol, "group", "join", token, env=env)
        assert joined.returncode == 0 and f"joined group {group} (3 member(s))" in joined.stdout, (
            joined.stdout
        )
        assert _vigil("--profile", alice, "group", "unlink", group, env=env).returncode == 0
        gone = _vigil("--profile", bob, "group", "join", token, env=env)
        assert gone.returncode == 1 and "gone" in gone.stdout, gone.stdout

        number = _vigil("--profile", alice, "verify", bob, env=env)
        assert number.returncode == 0 and "state: unverified" in number.stdout, number.stdout + number.stderr
        digits = re.search(r"((?:\d{5} ){11}\d{5})", number.stdout).group(1)
        confirmed = _vigil("--profile", alice, "verify", bob, "--confirm", digits, env=env)
        assert "state: verified" in confirmed.stdout, confirmed.stdout

        responder = _spawn("--profile", bob, "verify", "--accept", "--yes", "--timeout", "60", env=env)
        initiator = _vigil("--profile", carol, "verify", bob, "--sas", "--yes", "--timeout", "60", env=env)
        out, _ = responder.communicate(timeout=60)
        assert initiator.returncode == 0 and "state: verified" in initiator.stdout, (
            initiator.stdout + initiator.stderr
        )
        assert responder.returncode == 0 and f"verified {carol}" in out, out
        assert "compare with" in out
    finally:
        server.stop()

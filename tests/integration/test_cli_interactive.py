"""`vigil chat` with no command, as a person at a terminal uses it (a real process, lines on its stdin):
incoming messages appear without asking, `/help` lists the one-shot commands, and those commands work on
the session's open client, with or without a slash (a send, a group created by name, a history)."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

from helpers import ADULT, PASSPHRASE, texts, unique

from vigil.client.client import Client


def _reader(stream, lines: queue.Queue[str]) -> None:  # type: ignore[no-untyped-def]
    for line in stream:
        lines.put(line)


def _wait_for(lines: queue.Queue[str], seen: list[str], needle: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in seen:
            if needle in line:
                return line
        try:
            seen.append(lines.get(timeout=0.2))
        except queue.Empty:
            pass
    raise AssertionError(f"{needle!r} never appeared in:\n{''.join(seen)}")


async def test_interactive_session_shows_live_messages_and_runs_the_one_shot_commands(
    server, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    alice_name, bob_name = unique("alice"), unique("bob")
    alice = await Client.register(server.url, alice_name, ADULT, home / "profiles" / "alice.db", PASSPHRASE)
    await alice.close()
    bob = await Client.register(server.url, bob_name, ADULT, tmp_path / "bob.db", PASSPHRASE)
    process = subprocess.Popen(
        [sys.executable, "-m", "vigil", "chat", "--profile", "alice"],
        env={**os.environ, "VIGIL_HOME": str(home), "VIGIL_PASSPHRASE": PASSPHRASE, "COLUMNS": "200"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []
    threading.Thread(target=_reader, args=(process.stdout, lines), daemon=True).start()

    def type_line(text: str) -> None:
        assert process.stdin is not None
        process.stdin.write(text + "\n")
        process.stdin.flush()

    try:
        _wait_for(lines, seen, f"signed in as {alice_name}")
        type_line("/help")
        for command in ("/send-file", "/group", "/verify", "/report", "/request", "/quit"):
            _wait_for(lines, seen, command)
        # live: bob's message is printed without alice typing anything
        await bob.send_text(alice_name, "are you there?")
        line = _wait_for(lines, seen, "are you there?")
        assert bob_name in line
        # the one-shot commands, on the open client, with or without a slash
        type_line(f"/send {bob_name} 'yes, here'")
        _wait_for(lines, seen, "sent to")
        type_line(f"group create {bob_name} --name 'Book club'")
        _wait_for(lines, seen, "created group")
        type_line("/group list")
        _wait_for(lines, seen, "Book club")
        type_line(f"/history {bob_name}")
        _wait_for(lines, seen, f"{alice_name}: yes, here")
        type_line("/send")  # a usage error is shown and the session goes on
        _wait_for(lines, seen, "Missing argument")
        type_line("/quit")
        assert process.wait(timeout=30) == 0, "".join(seen)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    received = texts(await bob.fetch())
    assert "yes, here" in received
    await bob.close()

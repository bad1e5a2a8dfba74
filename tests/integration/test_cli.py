"""The command line as a user runs it (in-process, `cli_runner`): `vigil demo` (chat, then a known image to a
finished CyberTipline report on a stand-in), and two `vigil chat` profiles against `vigil serve`."""

from __future__ import annotations

from pathlib import Path

from cli_runner import vigil as _vigil
from helpers import unique
from live_server import start_server


def test_demo_shows_clients_plaintext_and_server_ciphertext_only(tmp_path: Path) -> None:
    result = _vigil("demo", "--workdir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for line in (
        "from alice: Hi Bob! Lunch tomorrow?",
        "from bob: We'd love to see you.",
        "from carol: Yes! See you there.",
    ):
        assert line in out
    assert "image/png" in out and "hash verified" in out
    stored = out.split("What the server stored")[1]
    assert "Lunch" not in stored and "queued for device" in stored and "blob" in stored
    database = b"".join(p.read_bytes() for p in (tmp_path / "server").glob("vigil.db*"))
    assert b"Lunch tomorrow" not in database and len(database) > 10_000
    # The known-image act: withheld on the sender's device, a voucher, a case, a finished report.
    act = " ".join(out.split("Known-image matching to the CyberTipline")[1].split())
    assert "withholds it (nothing uploaded, nothing sent) and sends voucher" in act
    assert "joins case" in act and "about dave" in act
    assert "Finished CyberTipline report id: 1000001 (stand-in state: finished, 1 file(s))" in act
    assert "preservation hold until" in act


def test_chat_profiles_register_send_receive(tmp_path: Path) -> None:
    server, _ = start_server("sqlite", tmp_path)
    env = {"VIGIL_HOME": str(tmp_path / "home"), "VIGIL_PASSPHRASE": "cli test passphrase"}
    alice, bob = unique("alice"), unique("bob")
    try:
        for name in (alice, bob):
            result = _vigil(
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
            assert result.returncode == 0 and f"registered {name}" in result.stdout, (
                result.stdout + result.stderr
            )
        sent = _vigil("chat", "--profile", alice, "send", bob, "hello over the cli", env=env)
        assert sent.returncode == 0 and "sent to 1 device" in sent.stdout, sent.stdout + sent.stderr
        picture = tmp_path / "pic.png"
        picture.write_bytes(b"\x89PNG fake picture bytes")
        assert _vigil("chat", "--profile", alice, "send-file", bob, str(picture), env=env).returncode == 0
        received = _vigil("chat", "--profile", bob, "receive", env=env)
        assert received.returncode == 0
        assert f"{alice}: hello over the cli" in received.stdout
        saved = tmp_path / "home" / "downloads" / "pic.png"
        assert saved.read_bytes() == b"\x89PNG fake picture bytes"
        again = _vigil("chat", "--profile", bob, "receive", env=env)
        assert "no new messages" in again.stdout
        wrong_env = {**env, "VIGIL_PASSPHRASE": "not the passphrase"}
        wrong = _vigil("chat", "--profile", bob, "receive", env=wrong_env)
        assert wrong.returncode == 1 and "storage_error" in wrong.stdout
        unknown = _vigil("chat", "--profile", alice, "send", unique("nobody"), "hi", env=env)
        assert unknown.returncode == 1 and "not_found" in unknown.stdout
    finally:
        server.stop()

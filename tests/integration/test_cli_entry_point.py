"""The `vigil` entry point as a real process: `python -m vigil` and the console script declared in
pyproject, its help and exit codes, and what `vigil serve` imports (its subcommands load lazily)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tomllib
from pathlib import Path

COMMANDS = ("serve", "demo", "chat", "console", "audit", "hashlist", "sim")
ROOT = Path(__file__).resolve().parents[2]


def _python(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def test_help_lists_every_command_and_errors_exit_non_zero(tmp_path: Path) -> None:
    shown = _python("-m", "vigil", "--help")
    assert shown.returncode == 0, shown.stderr
    rows = [line.split() for line in shown.stdout.splitlines() if line.startswith("│ ")]
    listed = [row[1] for row in rows if len(row) > 2]
    assert [name for name in listed if name in COMMANDS] == list(COMMANDS), shown.stdout
    assert _python("-m", "vigil", "no-such-command").returncode == 2
    env = {"VIGIL_HOME": str(tmp_path), "VIGIL_PASSPHRASE": "a long enough passphrase"}
    missing = _python("-m", "vigil", "chat", "--profile", "nobody", "receive", env=env)
    assert missing.returncode == 1, missing.stdout + missing.stderr
    assert "error (storage_error)" in missing.stdout


def test_the_console_script_names_the_cli_entry_point() -> None:
    target = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["vigil"]
    module, attribute = target.split(":")
    assert callable(getattr(importlib.import_module(module), attribute))


_RESOLVE_SERVE = """
import sys, tempfile, typer
from vigil.cli.app import app
group = typer.main.get_command(app)
context = typer.Context(group)
serve = group.get_command(context, "serve")
assert serve is not None and serve.name == "serve"
serve.make_context("serve", ["--port", "8123"], parent=context)
unwanted = ("vigil.client", "faiss", "vigil.sim", "vigil.cli.chat", "vigil.ncmec_standin")
print("resolved:", *sorted(m for m in unwanted if m in sys.modules))
from vigil.cli.serving import create_served_app
from vigil.server.settings import Settings
served = create_served_app(Settings(data_dir=tempfile.mkdtemp()))
assert any(getattr(route, "path", "") == "/console" for route in served.routes)
print("built:", *sorted(m for m in ("vigil.client", "vigil.sim", "vigil.cli.chat") if m in sys.modules))
"""


def test_serve_imports_neither_the_client_nor_faiss_nor_the_simulator() -> None:
    ran = _python("-c", _RESOLVE_SERVE)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == ["resolved:", "built:"], ran.stdout

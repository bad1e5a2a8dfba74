"""`vigil ...` run in this process through Typer's CliRunner: no interpreter start and no re-import of the
client and faiss per command. Output and exit codes are what a user sees; an unexpected exception fails
the test with its traceback instead of becoming exit code 1."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from typer.testing import CliRunner

from vigil.cli.app import app

__all__ = ["Ran", "vigil", "vigil_in_thread"]


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


def vigil(*args: str, env: Mapping[str, str] | None = None) -> Ran:
    """Runs `vigil ARGS` with `env` added to the environment (and 200 columns, as a wide terminal)."""
    environment = {"COLUMNS": "200", **(env or {})}
    result = CliRunner().invoke(app, list(args), env=environment, catch_exceptions=False)
    return Ran(result.exit_code, result.stdout, result.stderr)


async def vigil_in_thread(*args: str, env: Mapping[str, str] | None = None) -> Ran:
    """`vigil` from an async test: commands start their own event loop (`asyncio.run`), so they run in a
    worker thread while the test's loop waits."""
    return await asyncio.to_thread(vigil, *args, env=env)

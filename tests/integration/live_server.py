"""A real Vigil server process on a free loopback port, on SQLite or PostgreSQL (for tests and benchmarks).

Whatever this module starts, it stops: each server runs in its own process group (so uvicorn's worker
processes go with it), a failed start kills what it started, and servers still running when the
interpreter exits, or when it is terminated (SIGTERM, e.g. from `timeout`), are killed too. On Linux the
server also dies if the process that started it is killed outright.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx
import pytest

__all__ = [
    "REQUIRE_POSTGRES",
    "START_TIMEOUT_S",
    "ServerProcess",
    "create_postgres_database",
    "drop_postgres_database",
    "free_port",
    "postgres_admin_url",
    "require_backend",
    "running_server",
    "start_server",
]

# A busy shared machine can take well over 30 s to import and migrate; a healthy start returns at once.
START_TIMEOUT_S = float(os.environ.get("VIGIL_TEST_SERVER_START_TIMEOUT", "120"))
STOP_TIMEOUT_S = 15.0


def postgres_admin_url() -> str:
    return os.environ.get("VIGIL_TEST_POSTGRES_URL", "")


REQUIRE_POSTGRES = os.environ.get("VIGIL_REQUIRE_POSTGRES") == "1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


_running: set[subprocess.Popen[bytes]] = set()


def _kill_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    # The server leads its own session, so its pid is its process group id.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def _kill_all_running() -> None:
    for process in list(_running):
        _kill_group(process, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
        _running.discard(process)


def _on_sigterm(signum: int, _frame: FrameType | None) -> None:
    _kill_all_running()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


atexit.register(_kill_all_running)
if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
    signal.signal(signal.SIGTERM, _on_sigterm)


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A pre-exec hook that has the kernel SIGKILL the child when its parent dies (Linux), or None.

    The kernel ties this to the starting *thread*, so it is only used for starts from the main thread.
    The libc lookup happens here, in the parent: the hook runs between fork and exec, where importing
    is unsafe.
    """
    if sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig, sigkill = 1, int(signal.SIGKILL)

    def hook() -> None:
        prctl(pr_set_pdeathsig, sigkill)

    return hook


@dataclass
class ServerProcess:
    """A `vigil serve` child process. `restart()` kills it hard (SIGKILL) and starts it again on the
    same data, so tests can check nothing accepted is lost."""

    data_dir: Path
    database_url: str
    env_extra: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_level: str = "info"
    extra_args: list[str] = field(default_factory=list)
    _started: bool = field(default=False, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}-server.log"

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Starts the server and waits until /v1/health answers; on any failure kills it and raises.

        The port was free when chosen, but another process may take it before the server binds it: then
        the first start (not a restart, whose clients know the port) moves to another free port.
        """
        for attempt in range(3):
            log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
            try:
                self._start_once(timeout_s)
                return
            except RuntimeError:
                restarting = self._started
                taken = "address already in use" in self.log_path.read_text(errors="replace")[log_start:]
                if restarting or not taken or attempt == 2:
                    raise
                self.port = free_port()

    def _start_once(self, timeout_s: float) -> None:
        env = {
            **os.environ,
            "VIGIL_DATA_DIR": str(self.data_dir),
            "VIGIL_DATABASE_URL": self.database_url,
            "PYTHONUNBUFFERED": "1",  # the log file is complete while the server runs
            **self.env_extra,
        }
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "vigil", "serve",
            "--port", str(self.port), "--log-level", self.log_level, *self.extra_args,
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent_hook(),
            )
        _running.add(self.process)
        try:
            self._wait_healthy(timeout_s)
        except BaseException:
            self.kill()
            raise
        self._started = True

    def _wait_healthy(self, timeout_s: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}: {self._log_tail()}")
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not answer /v1/health within {timeout_s:.0f} s: {self._log_tail()}")

    def _reap(self) -> None:
        assert self.process is not None
        _kill_group(self.process, signal.SIGKILL)  # workers that outlived their supervisor, if any
        _running.discard(self.process)

    def kill(self) -> None:
        """SIGKILL the server and every process in its group."""
        if self.process is None:
            return
        _kill_group(self.process, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=STOP_TIMEOUT_S)
        self._reap()

    def stop(self) -> None:
        """SIGTERM the server's process group (a clean shutdown flushes its log); SIGKILL if it lingers."""
        if self.process is None:
            return
        if self.process.poll() is None:
            _kill_group(self.process, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=STOP_TIMEOUT_S)
        self._reap()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=STOP_TIMEOUT_S)

    def restart(self) -> None:
        self.kill()
        self.start()


def create_postgres_database() -> tuple[str, str]:
    """Creates a fresh database for one server; returns (name, sqlalchemy url)."""
    import psycopg2

    name = f"vigil_test_{uuid.uuid4().hex[:12]}"
    connection = psycopg2.connect(postgres_admin_url())
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()
    base = postgres_admin_url().rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return name, f"{base}/{name}"


def drop_postgres_database(name: str) -> None:
    import psycopg2

    connection = psycopg2.connect(postgres_admin_url())
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    connection.close()


def _postgres_unavailable() -> str | None:
    """Why the PostgreSQL run cannot happen, or None when it can."""
    if not postgres_admin_url():
        return "VIGIL_TEST_POSTGRES_URL is not set (e.g. postgresql://postgres@127.0.0.1:5432/test)"
    import psycopg2

    try:
        psycopg2.connect(postgres_admin_url(), connect_timeout=3).close()
    except psycopg2.OperationalError as error:
        return f"PostgreSQL at VIGIL_TEST_POSTGRES_URL is not reachable: {error}".strip()
    return None


def require_backend(backend: str) -> None:
    if backend != "postgres":
        return
    reason = _postgres_unavailable()
    if reason is None:
        return
    if REQUIRE_POSTGRES:
        pytest.fail(f"VIGIL_REQUIRE_POSTGRES=1 but {reason}")
    pytest.skip(reason)


@contextlib.contextmanager
def backend_database(backend: str) -> Iterator[str | None]:
    """A database of its own on `backend` for an in-process `ServerContext`: its SQLAlchemy URL on
    PostgreSQL (created here, dropped after), None on SQLite (the context's default file under its data
    dir). Skips or fails as `require_backend` when PostgreSQL is not reachable."""
    require_backend(backend)
    if backend != "postgres":
        yield None
        return
    name, url = create_postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(name)


def start_server(
    backend: str, tmp: Path, env_extra: dict[str, str] | None = None
) -> tuple[ServerProcess, str | None]:
    """Starts a server on a fresh database; returns it and the PostgreSQL database name to drop (or None).
    If the start fails, nothing is left behind. Prefer `running_server`, which also cleans up after."""
    data_dir = tmp / f"server-{secrets.token_hex(3)}"
    database: str | None = None
    if backend == "postgres":
        database, url = create_postgres_database()
    else:
        url = f"sqlite+aiosqlite:///{data_dir / 'vigil.db'}"
    server = ServerProcess(data_dir=data_dir, database_url=url, env_extra=env_extra or {})
    try:
        server.start()
    except BaseException:
        if database is not None:
            drop_postgres_database(database)
        raise
    return server, database


@contextlib.contextmanager
def running_server(
    backend: str, tmp: Path, env_extra: dict[str, str] | None = None
) -> Iterator[ServerProcess]:
    """A server on a fresh database for the duration of the block; stopped and its database dropped after."""
    server, database = start_server(backend, tmp, env_extra)
    try:
        yield server
    finally:
        try:
            server.stop()
        finally:
            if database is not None:
                drop_postgres_database(database)

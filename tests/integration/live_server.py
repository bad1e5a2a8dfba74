"""A real Vigil server process on a free loopback port, on SQLite or PostgreSQL (for tests and benchmarks)."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest


def postgres_admin_url() -> str:
    return os.environ.get("VIGIL_TEST_POSTGRES_URL", "")

REQUIRE_POSTGRES = os.environ.get("VIGIL_REQUIRE_POSTGRES") == "1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}-server.log"

    def start(self) -> None:
        env = {
            **os.environ,
            "VIGIL_DATA_DIR": str(self.data_dir),
            "VIGIL_DATABASE_URL": self.database_url,
            **self.env_extra,
        }
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "vigil", "serve", "--port", str(self.port), "--log-level", self.log_level, *self.extra_args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("server did not start in 30 s")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()

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


def start_server(backend: str, tmp: Path, env_extra: dict[str, str] | None = None) -> tuple[ServerProcess, str | None]:
    data_dir = tmp / f"server-{secrets.token_hex(3)}"
    database: str | None = None
    if backend == "postgres":
        database, url = create_postgres_database()
    else:
        url = f"sqlite+aiosqlite:///{data_dir / 'vigil.db'}"
    server = ServerProcess(data_dir=data_dir, database_url=url, env_extra=env_extra or {})
    server.start()
    return server, database

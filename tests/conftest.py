"""Shared fixtures: a real Vigil server process per test, on SQLite or PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from live_server import ServerProcess, drop_postgres_database, require_backend, start_server


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    require_backend(request.param)
    return str(request.param)


@pytest.fixture
def server(backend: str, tmp_path: Path) -> Iterator[ServerProcess]:
    process, database = start_server(backend, tmp_path)
    try:
        yield process
    finally:
        process.stop()
        if database is not None:
            drop_postgres_database(database)


@pytest.fixture
def passphrase() -> str:
    return "correct horse battery staple"

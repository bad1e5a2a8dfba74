"""Shared fixtures: a real Vigil server process on SQLite or PostgreSQL.

`server` is one process per test module and backend, shared by the module's tests (they register
their own uniquely named accounts). A test that needs a server of its own (an empty database, a
restart or a kill, a stop to read the final log) is marked `@pytest.mark.fresh_server`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from live_server import ServerProcess, require_backend, running_server


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    require_backend(request.param)
    return str(request.param)


@pytest.fixture(scope="module")
def module_server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(backend, tmp_path_factory.mktemp(f"server-{backend}")) as process:
        yield process


@pytest.fixture
def server(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Iterator[ServerProcess]:
    if request.node.get_closest_marker("fresh_server") is not None:
        with running_server(backend, tmp_path) as process:
            yield process
        return
    shared: ServerProcess = request.getfixturevalue("module_server")
    if shared.process is None or shared.process.poll() is not None:
        shared.start()  # an earlier test stopped it: same data, same port
    yield shared


@pytest.fixture
def passphrase() -> str:
    return "correct horse battery staple"

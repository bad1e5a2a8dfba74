"""A Vigil server running inside the current process on a free loopback port (demo, simulator, tests
of the CLI). The same `create_app` as `vigil serve`."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn

from vigil.server.app import create_app
from vigil.server.settings import Settings

__all__ = ["embedded_server"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def embedded_server(data_dir: Path, database_url: str | None = None) -> AsyncIterator[str]:
    """Yields the server's base URL; stops the server on exit."""
    port = _free_port()
    settings = Settings(data_dir=data_dir, database_url=database_url)
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("embedded server stopped during start-up")
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task

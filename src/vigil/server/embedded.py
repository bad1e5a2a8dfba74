"""A Vigil server running inside the current process on a free loopback port (demo, simulator, tests
of the CLI). `create_app` by default; `vigil demo` passes the app `vigil serve` runs (with the console)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from vigil.server.app import create_app
from vigil.server.serving import uvicorn_options
from vigil.server.settings import Settings

__all__ = ["embedded_server", "free_port"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def embedded_server(
    data_dir: Path,
    database_url: str | None = None,
    *,
    app_factory: Callable[[Settings], FastAPI] = create_app,
) -> AsyncIterator[str]:
    """Yields the server's base URL; stops the server on exit."""
    port = free_port()
    settings = Settings(data_dir=data_dir, database_url=database_url)
    config = uvicorn.Config(
        app_factory(settings),
        host="127.0.0.1",
        port=port,
        lifespan="on",
        **uvicorn_options(settings, "warning"),
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

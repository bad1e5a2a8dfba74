"""The server app in the test's own process and event loop, for request/response-shape tests: no
subprocess, no port. Everything that calls `httpx.AsyncClient(base_url=<its url>)` (the test, and the
Vigil client's transport) reaches the app through `httpx.ASGITransport`. WebSockets need a real server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from vigil.server.app import create_app
from vigil.server.settings import Settings

__all__ = ["InProcessServer", "in_process_server"]

IN_PROCESS_URL = "http://vigil.in-process"


@dataclass(frozen=True)
class InProcessServer:
    url: str
    app: FastAPI
    settings: Settings


@contextlib.asynccontextmanager
async def in_process_server(settings: Settings) -> AsyncIterator[InProcessServer]:
    """`create_app(settings)` with its lifespan run (migrations, background tasks) for the block."""
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    real_client = httpx.AsyncClient

    class RoutedClient(real_client):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            if str(kwargs.get("base_url", "")).startswith(IN_PROCESS_URL):
                kwargs.setdefault("transport", transport)
            super().__init__(*args, **kwargs)

    async with app.router.lifespan_context(app):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(httpx, "AsyncClient", RoutedClient)
            yield InProcessServer(url=IN_PROCESS_URL, app=app, settings=settings)

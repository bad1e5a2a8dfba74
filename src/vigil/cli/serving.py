"""The app `vigil serve` runs: the server's API with the review console mounted under /console. The
server never imports the console (it sits above it); this is where the two are put together."""

from __future__ import annotations

from fastapi import FastAPI

from vigil.console.app import mount_console
from vigil.server.app import create_app
from vigil.server.settings import Settings

__all__ = ["create_served_app"]


def create_served_app(settings: Settings | None = None) -> FastAPI:
    """The API, and the console unless `console_mounted` is off. Also the factory each worker process
    calls under `vigil serve --workers N`, and what `vigil demo` runs embedded."""
    settings = settings or Settings()
    served = create_app(settings)
    if settings.console_mounted:
        mount_console(served, settings)
    return served

"""The app `vigil serve` runs: the server's API with the review console mounted under /console. The
server never imports the console (it sits above it); this is where the two are put together."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from sqlalchemy.engine import make_url

from vigil.console.app import mount_console
from vigil.server.app import create_app
from vigil.server.settings import Settings

__all__ = ["create_served_app", "startup_banner"]


def create_served_app(settings: Settings | None = None) -> FastAPI:
    """The API, and the console unless `console_mounted` is off. Also the factory each worker process
    calls under `vigil serve --workers N`, and what `vigil demo` runs embedded."""
    settings = settings or Settings()
    served = create_app(settings)
    if settings.console_mounted:
        mount_console(served, settings)
    return served


def startup_banner(settings: Settings, host: str, port: int) -> str:
    """What `vigil serve` tells its operator before it starts: where the data and the dev secrets are,
    the console's address and how to create the first admin. Names files, never prints a secret."""
    base = f"http://{host}:{port}"
    data = settings.data_dir.resolve()
    database = make_url(settings.resolved_database_url).render_as_string(hide_password=True)
    lines = [
        f"Vigil server ({settings.environment.value}) on {base}",
        f"  data directory: {data}",
        f"  database:       {database}",
    ]
    dev_secrets = sorted(p.name for p in data.glob("*.key")) if data.is_dir() else []
    if dev_secrets:
        lines.append(
            f"  dev secrets:    {', '.join(dev_secrets)} in {data} (generated here in dev; "
            "set the VIGIL_*_KEY settings in production)"
        )
    if settings.console_mounted:
        lines += [
            f"  review console: {base}/console/",
            "  first admin:    vigil console create-admin USERNAME"
            + ("" if data == Path("data").resolve() else f" --data-dir {data}"),
        ]
    return "\n".join(lines)

"""`vigil` command line: `serve` and `demo` here; `chat`, `console`, `audit`, `hashlist` and `sim` are
imported when they are invoked (or listed by `--help`), so `vigil serve` does not import the client (with
its faiss index), the simulator or the chat commands (click's lazy-group pattern)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperCommand, TyperGroup

if TYPE_CHECKING:
    # Typer 0.2x vendors click; its groups take these types (only named for mypy, never imported at runtime).
    from typer._click import Command, Context

__all__ = ["LAZY_SUBCOMMANDS", "app", "main"]


# Each lazy subcommand: the `module:attribute` holding its Typer app, or a function building it.
LAZY_SUBCOMMANDS = {
    "chat": "vigil.cli.chat:build_chat_app",
    "console": "vigil.cli.console:console_app",
    "audit": "vigil.cli.console:audit_app",
    "hashlist": "vigil.cli.hashlist:hashlist_app",
    "sim": "vigil.cli.sim:sim_app",
}


class _LazyGroup(TyperGroup):
    """The root group: a lazy subcommand is imported the first time it is asked for (to run it, or to
    show its line in `--help`). Until then a placeholder keeps its name in the listing and in "did you
    mean" suggestions."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self._unloaded = dict(LAZY_SUBCOMMANDS)
        for name in LAZY_SUBCOMMANDS:
            self.commands[name] = TyperCommand(name)

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        target = self._unloaded.pop(cmd_name, None)
        if target is not None:
            module_name, attribute = target.split(":")
            found = getattr(importlib.import_module(module_name), attribute)
            group = typer.main.get_group(found if isinstance(found, typer.Typer) else found())
            group.name = cmd_name
            self.commands[cmd_name] = group
        return super().get_command(ctx, cmd_name)


app = typer.Typer(
    cls=_LazyGroup,
    help="Vigil: end-to-end encrypted messaging that still protects children.",
    no_args_is_help=True,
)


@app.callback()
def _root() -> None:
    """Vigil command line."""


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    data_dir: str | None = typer.Option(None, help="Data directory (default: $VIGIL_DATA_DIR or ./data)."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
    workers: int = typer.Option(1, min=1, help="Worker processes; more than one needs VIGIL_REDIS_URL."),
) -> None:
    """Run the Vigil server (migrates the database first)."""
    import asyncio
    import os

    import uvicorn

    from vigil.cli.serving import create_served_app
    from vigil.server.db.engine import create_engine, migrate
    from vigil.server.serving import uvicorn_options
    from vigil.server.settings import Settings

    if data_dir is not None:
        os.environ["VIGIL_DATA_DIR"] = data_dir
    settings = Settings()
    options = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "ws_max_size": 16 * 1024 * 1024,
        **uvicorn_options(settings),
    }
    if workers == 1:
        uvicorn.run(create_served_app(settings), **options)
        return
    if not settings.redis_url:
        raise typer.BadParameter(
            "several workers need VIGIL_REDIS_URL to pass delivery wake-ups between them"
        )

    async def migrate_once() -> None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(settings.resolved_database_url)
        await migrate(engine)
        await engine.dispose()

    # Migrate once here so that the workers do not race to create the schema.
    asyncio.run(migrate_once())
    settings.load_franking_key()  # in dev, create the key file before the workers read it
    uvicorn.run("vigil.cli.serving:create_served_app", factory=True, workers=workers, **options)


@app.command()
def demo(
    workdir: str | None = typer.Option(None, help="Keep the demo's files here (default: a temp dir)."),
) -> None:
    """Three people chat through an embedded server; shows what clients saw beside what the server stored."""
    import asyncio
    from pathlib import Path

    from rich.console import Console

    from vigil.cli.demo import run_demo

    asyncio.run(run_demo(Console(), Path(workdir) if workdir else None))


def main() -> None:
    app()

"""`vigil` command line: serve, demo, chat."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Vigil: end-to-end encrypted messaging that still protects children.", no_args_is_help=True
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

    from vigil.server.app import create_app
    from vigil.server.db.engine import create_engine, migrate
    from vigil.server.settings import Settings

    if data_dir is not None:
        os.environ["VIGIL_DATA_DIR"] = data_dir
    settings = Settings()
    options = {"host": host, "port": port, "log_level": log_level, "ws_max_size": 16 * 1024 * 1024}
    if workers == 1:
        uvicorn.run(create_app(settings), **options)  # type: ignore[arg-type]
        return
    if not settings.redis_url:
        raise typer.BadParameter("several workers need VIGIL_REDIS_URL to pass delivery wake-ups between them")

    async def migrate_once() -> None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(settings.resolved_database_url)
        await migrate(engine)
        await engine.dispose()

    # Migrate once here so that the workers do not race to create the schema.
    asyncio.run(migrate_once())
    settings.load_franking_key()  # in dev, create the key file before the workers read it
    uvicorn.run("vigil.server.app:create_app", factory=True, workers=workers, **options)  # type: ignore[arg-type]


@app.command()
def demo(
    workdir: str | None = typer.Option(None, help="Keep the demo's files here (default: a temp dir)."),
) -> None:
    """Three people chat through an embedded server; shows what clients saw beside what the server stored."""
    import asyncio
    from pathlib import Path

    from rich.console import Console

    from vigil.demo import run_demo

    asyncio.run(run_demo(Console(), Path(workdir) if workdir else None))


def _add_subcommands() -> None:
    from vigil.chat import chat_app
    from vigil.console.cli import audit_app, console_app
    from vigil.hashlist_cli import hashlist_app
    from vigil.sim_cli import sim_app

    app.add_typer(chat_app, name="chat")
    app.add_typer(console_app, name="console")
    app.add_typer(audit_app, name="audit")
    app.add_typer(hashlist_app, name="hashlist")
    app.add_typer(sim_app, name="sim")


_add_subcommands()


def main() -> None:
    app()

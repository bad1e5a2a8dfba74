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
) -> None:
    """Run the Vigil server (migrates the database first)."""
    import uvicorn

    from vigil.server.app import create_app
    from vigil.server.settings import Settings

    settings = Settings() if data_dir is None else Settings(data_dir=data_dir)  # type: ignore[arg-type]
    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level, ws_max_size=16 * 1024 * 1024)


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
    from vigil.sim_cli import sim_app

    app.add_typer(chat_app, name="chat")
    app.add_typer(sim_app, name="sim")


_add_subcommands()


def main() -> None:
    app()

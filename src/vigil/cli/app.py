"""`vigil` command line: `serve` and `demo` here; `chat`, `app`, `console`, `audit`, `hashlist`, `sim` and
`cybertip` are imported when they are invoked (or listed by `--help`), so `vigil serve` does not import the
client (with its PDQ index), the simulator or the chat commands (click's lazy-group pattern)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import typer
from typer._click.exceptions import ClickException  # Typer 0.2x vendors click
from typer.core import TyperCommand, TyperGroup, TyperOption

if TYPE_CHECKING:
    # Typer 0.2x vendors click; its groups take these types (only named for mypy, never imported at runtime).
    from typer._click import Command, Context

__all__ = ["LAZY_SUBCOMMANDS", "app", "main"]


# Each lazy subcommand: the `module:attribute` holding its Typer app, or a function building it.
LAZY_SUBCOMMANDS = {
    "chat": "vigil.cli.chat:build_chat_app",
    "app": "vigil.cli.messenger:build_app_command",
    "console": "vigil.cli.console:console_app",
    "audit": "vigil.cli.console:audit_app",
    "hashlist": "vigil.cli.hashlist:hashlist_app",
    "sim": "vigil.cli.sim:sim_app",
    "cybertip": "vigil.cli.cybertip:cybertip_app",
}


_typed_placeholder = TyperOption.display_type_rich


def _no_placeholder_for_flags(option: TyperOption, ctx: Context) -> str | None:
    """Typer 0.2x shows `<bool>` after every flag (`--follow <bool>`), as if it took a value; a flag
    takes none, so its help line shows no placeholder."""
    return None if option.is_flag else _typed_placeholder(option, ctx)


TyperOption.display_type_rich = _no_placeholder_for_flags  # type: ignore[method-assign,assignment]


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

    def invoke(self, ctx: Context) -> Any:
        """Every failure of a command becomes one line on stderr and exit status 1 (`cli.errors`);
        click's own usage errors and exits pass through, and `--debug` keeps the traceback."""
        try:
            return super().invoke(ctx)
        except (ClickException, typer.Exit, typer.Abort):
            raise
        except Exception as error:
            if ctx.params.get("debug"):
                raise
            from vigil.cli.errors import one_line

            typer.echo(f"error: {one_line(error)}", err=True)
            raise typer.Exit(1) from error


app = typer.Typer(
    cls=_LazyGroup,
    help="Vigil: end-to-end encrypted messaging that still protects children.",
    no_args_is_help=True,
)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback when a command fails."),
) -> None:
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
    from sqlalchemy.engine import make_url

    from vigil.cli.errors import CliError, root_cause
    from vigil.cli.serving import create_served_app, startup_banner
    from vigil.server.db.engine import create_engine, migrate
    from vigil.server.serving import uvicorn_options
    from vigil.server.settings import Settings

    if data_dir is not None:
        os.environ["VIGIL_DATA_DIR"] = data_dir
    settings = Settings()
    options = {
        "host": host,
        "port": port,
        "ws_max_size": 16 * 1024 * 1024,
        **uvicorn_options(settings, log_level),
    }
    if workers > 1 and not settings.redis_url:
        raise typer.BadParameter(
            "several workers need VIGIL_REDIS_URL to pass delivery wake-ups between them"
        )

    async def migrate_once() -> None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(settings.resolved_database_url)
        try:
            await migrate(engine, pseudonym_key=settings.load_pseudonym_key())
        finally:
            await engine.dispose()

    # Migrate once here: an unreachable database is one clear line before anything starts, and several
    # workers do not race to create the schema.
    try:
        asyncio.run(migrate_once())
    except Exception as error:
        where = make_url(settings.resolved_database_url).render_as_string(hide_password=True)
        raise CliError(f"cannot reach the database at {where}: {root_cause(error)}") from error
    settings.load_franking_key()  # in dev, create the key files before the workers read them
    settings.load_report_key()
    settings.load_notice_signing_key()
    typer.echo(startup_banner(settings, host, port))
    if workers == 1:
        uvicorn.run(create_served_app(settings), **options)
        return
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

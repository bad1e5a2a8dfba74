"""`vigil console serve | create-admin | add-reviewer` and `vigil audit verify`."""

from __future__ import annotations

import asyncio
import os

import typer
from rich.console import Console

from vigil.errors import VigilError

__all__ = ["audit_app", "console_app"]

console_app = typer.Typer(help="The trust & safety review console.", no_args_is_help=True)
audit_app = typer.Typer(help="The append-only, hash-chained audit log.", no_args_is_help=True)
out = Console()


def _settings(data_dir: str | None) -> object:
    from vigil.server.settings import Settings

    return Settings() if data_dir is None else Settings(data_dir=data_dir)  # type: ignore[arg-type]


def _password() -> str:
    from_env = os.environ.get("VIGIL_CONSOLE_PASSWORD")
    if from_env:
        return from_env
    return str(typer.prompt("Password (12+ characters)", hide_input=True, confirmation_prompt=True))


def _add_reviewer(username: str, role_name: str, data_dir: str | None) -> None:
    from vigil.console.auth import Role, create_reviewer
    from vigil.server.offline import offline_context
    from vigil.server.settings import Settings

    settings = _settings(data_dir)
    assert isinstance(settings, Settings)
    password = _password()

    async def work() -> None:
        async with offline_context(settings) as ctx:
            reviewer = await create_reviewer(ctx, username, password, Role(role_name), "cli")
            out.print(f"created {reviewer.role.value} [bold]{reviewer.username}[/bold]")

    try:
        asyncio.run(work())
    except VigilError as error:
        out.print(f"[red]error[/red] ({error.code}): {error.detail}")
        raise typer.Exit(1) from error


@console_app.command("create-admin")
def create_admin(
    username: str = typer.Argument(..., help="The admin's name."),
    data_dir: str | None = typer.Option(None, help="Data directory (default: $VIGIL_DATA_DIR or ./data)."),
) -> None:
    """Bootstrap the first admin (password from VIGIL_CONSOLE_PASSWORD or a prompt)."""
    _add_reviewer(username, "admin", data_dir)


@console_app.command("add-reviewer")
def add_reviewer(
    username: str = typer.Argument(...),
    role: str = typer.Option("reviewer", help="reviewer, lead or admin."),
    data_dir: str | None = typer.Option(None, help="Data directory (default: $VIGIL_DATA_DIR or ./data)."),
) -> None:
    """Add a reviewer account (password from VIGIL_CONSOLE_PASSWORD or a prompt)."""
    _add_reviewer(username, role, data_dir)


@console_app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8001, help="Port to listen on."),
    data_dir: str | None = typer.Option(None, help="Data directory (default: $VIGIL_DATA_DIR or ./data)."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Run the console alone on its own port (`vigil serve` also mounts it under /console)."""
    import uvicorn

    from vigil.console.app import create_console_app
    from vigil.server.settings import Settings

    settings = _settings(data_dir)
    assert isinstance(settings, Settings)
    uvicorn.run(create_console_app(settings), host=host, port=port, log_level=log_level)


@audit_app.command("verify")
def verify(
    data_dir: str | None = typer.Option(None, help="Data directory (default: $VIGIL_DATA_DIR or ./data)."),
) -> None:
    """Check every link and hash of the audit log; exit 1 if any entry was edited or removed."""
    from vigil.server.db.engine import create_engine
    from vigil.server.services.audit import verify_chain
    from vigil.server.settings import Settings

    settings = _settings(data_dir)
    assert isinstance(settings, Settings)

    async def work() -> tuple[bool, int, str]:
        from sqlalchemy.ext.asyncio import AsyncSession

        engine = create_engine(settings.resolved_database_url)
        try:
            async with AsyncSession(engine) as session:
                check = await verify_chain(session)
                return check.ok, check.entries, check.problem
        finally:
            await engine.dispose()

    ok, entries, problem = asyncio.run(work())
    if ok:
        out.print(f"audit log intact: {entries} entries verified")
        return
    out.print(f"[red]audit log BROKEN[/red] after {entries} good entries: {problem}")
    raise typer.Exit(1)

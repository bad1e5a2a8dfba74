"""`vigil cybertip`: NCMEC CyberTipline tools. `status` checks that the configured CyberTipline
(`VIGIL_CYBERTIPLINE_URL`, NCMEC's test base by default) is reachable and accepts the configured
credentials; `stand-in` runs a local stand-in of NCMEC's reporting API (`vigil.ncmec_standin`) for tests,
the demo and operators rehearsing."""

from __future__ import annotations

import typer

__all__ = ["cybertip_app"]

cybertip_app = typer.Typer(help="NCMEC CyberTipline reporting tools.", no_args_is_help=True)


@cybertip_app.command("status")
def status(
    timeout: float = typer.Option(30.0, help="Seconds to wait for each attempt."),
    attempts: int = typer.Option(3, min=1, help="Attempts before giving up on an unreachable server."),
) -> None:
    """Check the CyberTipline: reachable and credentials accepted (exit 1 with one line otherwise)."""
    import asyncio

    import pydantic

    from vigil.cli.errors import CliError
    from vigil.server.cybertipline import CyberTiplineClient, RetryPolicy
    from vigil.server.settings import Settings

    try:
        settings = Settings()
    except pydantic.ValidationError as invalid:
        raise CliError("; ".join(str(error["msg"]) for error in invalid.errors())) from None

    async def check() -> str | None:
        async with CyberTiplineClient.from_settings(
            settings, timeout=timeout, retry=RetryPolicy(attempts=attempts, base_delay=0.5)
        ) as client:
            return (await client.status()).request_id

    request_id = asyncio.run(check())
    typer.echo(
        f"CyberTipline {_shown(settings.cybertipline_url)}: reachable, credentials accepted "
        f"(user {settings.cybertipline_username!r}, Request-ID {request_id or 'none'})"
    )


def _shown(url: str) -> str:
    """The URL without any user:password part."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@cybertip_app.command("stand-in")
def stand_in(
    port: int = typer.Option(..., help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (keep it on loopback)."),
    username: str = typer.Option(
        "standin", envvar="VIGIL_CYBERTIPLINE_USERNAME", help="Basic-auth user the stand-in accepts."
    ),
    password: str = typer.Option(
        "standin", envvar="VIGIL_CYBERTIPLINE_PASSWORD", help="Basic-auth password the stand-in accepts."
    ),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Run a stand-in CyberTipline server (in memory; reports are lost when it stops)."""
    import uvicorn

    from vigil.ncmec_standin import create_standin_app

    typer.echo(
        f"CyberTipline stand-in on http://{host}:{port} (user {username!r}; state at /_standin/reports)"
    )
    uvicorn.run(create_standin_app(username, password), host=host, port=port, log_level=log_level)

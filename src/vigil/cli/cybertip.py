"""`vigil cybertip`: NCMEC CyberTipline tools. `stand-in` runs a local stand-in of NCMEC's reporting API
(`vigil.ncmec_standin`) for tests, the demo and operators rehearsing."""

from __future__ import annotations

import typer

__all__ = ["cybertip_app"]

cybertip_app = typer.Typer(help="NCMEC CyberTipline reporting tools.", no_args_is_help=True)


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

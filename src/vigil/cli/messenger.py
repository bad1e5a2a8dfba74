"""`vigil app`: the local web messenger for one profile (the same profiles as `vigil chat --profile`).

Binds 127.0.0.1 on a random free port, makes a secret for this launch, and opens the browser on the
address that carries it (or prints it with --no-browser). Keys and the encrypted store stay in this
process; see vigil.app.security for what the browser must present."""

from __future__ import annotations

import socket
from pathlib import Path

import typer

__all__ = ["build_app_command"]


def _run(
    profile: str = typer.Option("default", help="Profile (device) name, as `vigil chat --profile`."),
    home: Path = typer.Option(Path.home() / ".vigil", envvar="VIGIL_HOME", help="Where profiles live."),
    server: str | None = typer.Option(
        None, help="Server URL (default: the profile's own; for a new account http://127.0.0.1:8000)."
    ),
    no_browser: bool = typer.Option(False, "--no-browser", help="Print the address instead of opening it."),
    port: int = typer.Option(0, help="Port on 127.0.0.1 (default: a random free one)."),
    hashlist_authority_key: str | None = typer.Option(
        None,
        envvar="VIGIL_HASHLIST_AUTHORITY_KEY",
        help="The hash-list authority's public key (base64) to pin; default: the key the server names, "
        "trusted on first use (its fingerprint is in Settings).",
    ),
) -> None:
    """Open the Vigil messenger in your browser (a local page; your keys never leave this process)."""
    import uvicorn

    from vigil.app.nudity import load_classifier
    from vigil.app.security import LaunchGuard, new_secret
    from vigil.app.session import AppSession
    from vigil.app.web import create_local_app

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    # Listening before the address is printed: a browser (or test) that connects while the app is still
    # starting waits in the backlog instead of being refused.
    listener.listen(128)
    bound = listener.getsockname()[1]
    secret = new_secret()
    session = AppSession(
        home / "profiles" / f"{profile}.db", server, load_classifier(), hashlist_authority_key
    )
    app = LaunchGuard(create_local_app(session), secret, {"port": bound})
    url = f"http://127.0.0.1:{bound}/?key={secret}"
    typer.echo(f"Vigil app for profile {profile!r}: {url}", err=False)
    typer.echo("keep this address private: it opens your messages. Ctrl+C stops the app.")
    if not no_browser:
        import webbrowser

        webbrowser.open(url)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    uvicorn.Server(config).run(sockets=[listener])


def build_app_command() -> typer.Typer:
    app_command = typer.Typer(help="The local web messenger.", no_args_is_help=False)
    app_command.callback(invoke_without_command=True)(_run)
    return app_command

"""Every `vigil` command (Typer). The root app is `vigil.cli.app`; this package imports nothing so that a
command pays only for what it uses."""

__all__: list[str] = []

"""`vigil chat`: a profile-based command-line client. Each profile is one device, its state in an
encrypted store under `--home` (default ~/.vigil). The passphrase comes from VIGIL_PASSPHRASE or a prompt.

`build_chat_app` assembles the command group from its modules: messages, groups and verification,
reporting and notices, contact requests, device and account deletion (in that order in
`vigil chat --help`)."""

from __future__ import annotations

from pathlib import Path

import typer

from vigil.cli.chat import account, contacts, groups, messages, safety
from vigil.cli.chat.common import Profile

__all__ = ["build_chat_app"]


def _chat(
    ctx: typer.Context,
    profile: str = typer.Option("default", help="Profile (device) name."),
    home: Path = typer.Option(Path.home() / ".vigil", envvar="VIGIL_HOME", help="Where profiles live."),
    hashlist_authority_key: str | None = typer.Option(
        None,
        envvar="VIGIL_HASHLIST_AUTHORITY_KEY",
        help="The hash-list authority's public key (base64) to pin; default: the key the server names, "
        "trusted on first use (compare the fingerprint shown).",
    ),
) -> None:
    Profile.name, Profile.home, Profile.authority = profile, home, hashlist_authority_key
    if ctx.invoked_subcommand is None:
        from vigil.cli.chat.interactive import interactive

        group = ctx.command
        assert isinstance(group, typer.core.TyperGroup)
        interactive(group, ctx)


def build_chat_app() -> typer.Typer:
    chat_app = typer.Typer(help="Chat from the command line as one device profile.", no_args_is_help=False)
    chat_app.callback(invoke_without_command=True)(_chat)
    for module in (messages, groups, safety, contacts, account):
        module.add_commands(chat_app)
    return chat_app

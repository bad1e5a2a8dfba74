"""`vigil chat` with no command: an interactive session on one open client.

Incoming messages, contact requests and notices are printed as they arrive (the session catches up with
the server every second). Each line is a `vigil chat` command, written as on the command line without the
`vigil chat --profile NAME` in front, with or without a leading slash (`/send bob hi`, `group list`,
`verify bob --sas`); `/help` lists them and `/quit` (or Ctrl+D) ends the session. The commands are the
one-shot ones themselves, run in this process on the session's client (`common.Interactive`), one at a
time with the live receiver."""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import threading
from collections.abc import Coroutine
from typing import Final, TypeVar

import typer
from typer._click.exceptions import ClickException  # Typer 0.2x vendors click

from vigil.cli.chat.common import Interactive, Profile, console, ensure_authority, passphrase, show
from vigil.client.client import Client
from vigil.errors import VigilError

__all__ = ["POLL_SECONDS", "interactive"]

POLL_SECONDS: Final = 1.0
ANNOUNCE_EVERY: Final = 5  # contact requests and notices: every fifth round
T = TypeVar("T")
# register and link make another device; delete-account removes the profile this session holds open.
_NOT_HERE: Final = frozenset({"register", "link", "delete-account"})


def _help(group: typer.core.TyperGroup, ctx: typer.Context) -> str:
    lines = ["commands (as `vigil chat COMMAND ...`; `/COMMAND --help` for its options):"]
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or name in _NOT_HERE:
            continue
        lines.append(f"  /{name:<15} {command.get_short_help_str(70)}")
    lines.append(f"  /{'help':<15} this list")
    lines.append(f"  /{'quit':<15} end the session (or Ctrl+D)")
    return "\n".join(lines)


async def _receive_forever(client: Client) -> None:
    from vigil.cli.chat.safety import announce_new

    round_ = 0
    while True:
        try:
            assert Interactive.lock is not None
            async with Interactive.lock:
                for event in await client.fetch():
                    show(event)
                client.consume()
                if round_ % ANNOUNCE_EVERY == 0:
                    await announce_new(client)
        except (VigilError, OSError) as error:
            console.print(f"[dim]could not reach the server ({type(error).__name__}); retrying[/dim]")
        round_ += 1
        await asyncio.sleep(POLL_SECONDS)


async def _open(secret: str) -> Client:
    """Opens the profile once, its hash-list authority pinned as every command does (`open_client`)."""
    client = await Client.open(Profile.path(), secret)
    try:
        await ensure_authority(client)
    except BaseException:
        await client.close()
        raise
    return client


def interactive(group: typer.core.TyperGroup, ctx: typer.Context) -> None:
    secret = passphrase()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="vigil-chat-session", daemon=True)
    thread.start()

    def on_loop(work: Coroutine[object, object, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, loop).result()

    async def make_lock() -> asyncio.Lock:
        return asyncio.Lock()

    try:
        client = on_loop(_open(secret))
    except VigilError as error:
        console.print(f"[red]error[/red] ({error.code}): {error.detail}")
        loop.call_soon_threadsafe(loop.stop)
        raise typer.Exit(1) from error
    Interactive.client, Interactive.loop, Interactive.lock = client, loop, on_loop(make_lock())
    receiver = asyncio.run_coroutine_threadsafe(_receive_forever(client), loop)
    console.print(
        f"signed in as [bold]{client.username}[/bold] ({client.device_id}). New messages appear as they "
        "arrive. /help lists the commands, /quit ends."
    )
    try:
        while True:
            try:
                line = input("> ")
            except EOFError:
                break
            try:
                words = shlex.split(line)
            except ValueError as error:
                console.print(f"[red]error[/red]: {error}")
                continue
            if not words:
                continue
            name = words[0].removeprefix("/")
            if name in ("quit", "exit"):
                break
            if name in ("help", "?"):
                console.print(_help(group, ctx), highlight=False, markup=False)
                continue
            if name in _NOT_HERE:
                console.print(f"`{name}` is not run inside a session: run it as `vigil chat {name} ...`")
                continue
            _run_command(group, [name, *words[1:]])
    finally:
        receiver.cancel()
        with contextlib.suppress(Exception):

            async def close() -> None:
                assert Interactive.lock is not None
                async with Interactive.lock:
                    await client.close()

            on_loop(close())
        Interactive.client = Interactive.loop = Interactive.lock = None
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)


def _run_command(group: typer.core.TyperGroup, args: list[str]) -> None:
    """One line: the `vigil chat` group parses and runs it as it would from the shell."""
    profile = ["--profile", Profile.name, "--home", str(Profile.home)]
    if Profile.authority:
        profile += ["--hashlist-authority-key", Profile.authority]
    try:
        group.main([*profile, *args], prog_name="vigil chat", standalone_mode=False)
    except ClickException as error:
        error.show()
    except (typer.Exit, typer.Abort, SystemExit):
        pass  # the command already said what went wrong

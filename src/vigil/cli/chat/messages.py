"""`vigil chat`: a profile-based command-line client. Each profile is one device, its state in an
encrypted store under `--home` (default ~/.vigil). The passphrase comes from VIGIL_PASSPHRASE or a prompt."""

from __future__ import annotations

import asyncio
import datetime as dt
import mimetypes
import os
import shlex
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from vigil.client.client import Client, Event, MessageEvent, RejectedDelivery
from vigil.client.safety import ImageWithheld
from vigil.errors import PolicyViolation, VigilError

__all__ = ["chat_app"]

chat_app = typer.Typer(help="Chat from the command line as one device profile.", no_args_is_help=False)
console = Console()
T = TypeVar("T")


class _Profile:
    name: str = "default"
    home: Path = Path.home() / ".vigil"

    @classmethod
    def path(cls) -> Path:
        return cls.home / "profiles" / f"{cls.name}.db"


def _passphrase(confirm: bool = False) -> str:
    from_env = os.environ.get("VIGIL_PASSPHRASE")
    if from_env:
        return from_env
    return str(typer.prompt("Passphrase for this profile", hide_input=True, confirmation_prompt=confirm))


def _run(work: Callable[[], Coroutine[object, object, T]]) -> T:
    try:
        return asyncio.run(work())
    except VigilError as error:
        console.print(f"[red]error[/red] ({error.code}): {error.detail}")
        if isinstance(error, PolicyViolation) and "contact request first" in error.detail:
            console.print(
                f"they are a minor you are not connected to: ask with `vigil chat --profile {_Profile.name} "
                "request USER`; you can message them once they accept"
            )
        raise typer.Exit(1) from error


def show(event: Event) -> None:
    if isinstance(event, ImageWithheld):
        console.print(f"[red]image from {escape(event.sender)} withheld:[/red] {escape(event.notice)}")
        return
    if not isinstance(event, MessageEvent | RejectedDelivery):  # groups / verification (chat_groups.py)
        from vigil.chat_groups import show_security_event

        show_security_event(event)
        return
    if not isinstance(event, MessageEvent):
        console.print(
            f"[red]dropped a message from {event.sender} that failed verification:[/red] {event.reason}"
        )
        return
    when = dt.datetime.fromtimestamp(event.server_ts_ms / 1000).strftime("%H:%M:%S")
    who = f"me -> {event.conversation}" if event.outgoing else event.sender
    attachment = ""
    if event.attachment is not None:
        saved = _Profile.home / "downloads" / (event.attachment.name or f"{event.message_id}.bin")
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_bytes(event.attachment.data)
        attachment = f" [attachment {event.attachment.mime}, saved to {saved}]"
    console.print(f"[dim]{when}[/dim] [bold]{escape(who)}[/bold]: {escape(event.text + attachment)}")


@chat_app.callback(invoke_without_command=True)
def _chat(
    ctx: typer.Context,
    profile: str = typer.Option("default", help="Profile (device) name."),
    home: Path = typer.Option(Path.home() / ".vigil", envvar="VIGIL_HOME", help="Where profiles live."),
) -> None:
    _Profile.name, _Profile.home = profile, home
    if ctx.invoked_subcommand is None:
        _interactive()


@chat_app.command()
def register(
    username: str = typer.Argument(..., help="Username (a-z, 0-9, _; 3-32 characters)."),
    server: str = typer.Option("http://127.0.0.1:8000", help="Server URL."),
    birth_date: str = typer.Option(..., help="Birth date, YYYY-MM-DD (stored as an age band)."),
) -> None:
    """Register a new account with this profile as its first device."""

    async def work() -> None:
        client = await Client.register(
            server, username, dt.date.fromisoformat(birth_date), _Profile.path(), _passphrase(confirm=True)
        )
        console.print(f"registered [bold]{client.username}[/bold], device {client.device_id}")
        await client.close()

    _run(work)


@chat_app.command()
def link(new_profile: str = typer.Argument(..., help="Name of the new device's profile.")) -> None:
    """Add another device to this account (authorised by this profile)."""

    async def work() -> None:
        async with await Client.open(_Profile.path(), _passphrase()) as client:
            linked = await client.link_device(_Profile.home / "profiles" / f"{new_profile}.db", _passphrase())
            console.print(f"linked device {linked.device_id} as profile {new_profile}")
            await linked.close()

    _run(work)


@chat_app.command()
def send(to: str, text: str) -> None:
    """Send a text message."""

    async def work() -> None:
        async with await Client.open(_Profile.path(), _passphrase()) as client:
            from vigil.chat_groups import print_warnings

            await client.refresh_devices(to)  # key-change warnings show before anything is sent
            print_warnings(client)
            sent = await client.send_text(to, text)
            print_warnings(client)
            console.print(f"sent to {sent.devices} device(s)")

    _run(work)


@chat_app.command("send-file")
def send_file(to: str, path: Path, caption: str = typer.Option("", help="Text shown with the file.")) -> None:
    """Send a file or image, encrypted on this device."""

    async def work() -> None:
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        async with await Client.open(_Profile.path(), _passphrase()) as client:
            sent = await client.send_attachment(to, path.read_bytes(), mime, name=path.name, caption=caption)
            console.print(f"sent {path.name} to {sent.devices} device(s)")

    _run(work)


@chat_app.command()
def receive(follow: bool = typer.Option(False, help="Keep listening for pushed messages.")) -> None:
    """Fetch (and with --follow, keep receiving) messages."""

    async def work() -> None:
        async with await Client.open(_Profile.path(), _passphrase()) as client:
            events = await client.fetch()
            for event in events:
                show(event)
            if not events and not follow:
                console.print("[dim]no new messages[/dim]")
            if follow:
                async for event in client.listen():
                    show(event)

    _run(work)


@chat_app.command()
def history(peer: str, limit: int = typer.Option(20, help="How many messages.")) -> None:
    """Show the locally stored conversation with PEER."""

    async def work() -> None:
        async with await Client.open(_Profile.path(), _passphrase()) as client:
            for record in client.history(peer, limit):
                payload = record["payload"]
                assert isinstance(payload, dict)
                console.print(f"[bold]{payload['sender']}[/bold]: {payload['body']}")

    _run(work)


_HELP = "commands: send <to> <text> | file <to> <path> | recv | history <peer> | quit"


def _interactive() -> None:
    """A simple line-based session on one open client."""

    async def work() -> None:
        async with await Client.open(_Profile.path(), _passphrase()) as client:
            console.print(f"signed in as [bold]{client.username}[/bold] ({client.device_id}). {_HELP}")
            loop = asyncio.get_running_loop()
            while True:
                line = await loop.run_in_executor(None, input, "> ")
                words = shlex.split(line)
                if not words:
                    continue
                try:
                    match words:
                        case ["quit" | "exit"]:
                            return
                        case ["send", to, *text]:
                            await client.send_text(to, " ".join(text))
                        case ["file", to, path]:
                            data = Path(path).read_bytes()
                            mime = mimetypes.guess_type(path)[0] or "application/octet-stream"
                            await client.send_attachment(to, data, mime, name=Path(path).name)
                        case ["recv"]:
                            for event in await client.fetch():
                                show(event)
                        case ["history", peer]:
                            for record in client.history(peer):
                                payload = record["payload"]
                                assert isinstance(payload, dict)
                                console.print(f"[bold]{payload['sender']}[/bold]: {payload['body']}")
                        case _:
                            console.print(_HELP)
                except VigilError as error:
                    console.print(f"[red]error[/red] ({error.code}): {error.detail}")

    _run(work)


def _add_group_commands() -> None:
    from vigil.chat_groups import register as register_group_commands

    register_group_commands(chat_app)


_add_group_commands()


def _add_safety_commands() -> None:
    from vigil.chat_safety import register as register_safety_commands

    register_safety_commands(chat_app)


_add_safety_commands()


def _add_contact_commands() -> None:
    from vigil.chat_contacts import register as register_contact_commands

    register_contact_commands(chat_app)


_add_contact_commands()

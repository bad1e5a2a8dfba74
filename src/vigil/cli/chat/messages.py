"""`vigil chat register | link | send | send-file | receive | history` and the interactive session: one
device profile sending and receiving direct messages."""

from __future__ import annotations

import datetime as dt
import mimetypes
from pathlib import Path

import typer

from vigil.app.view import AGE_BAND_FIELD
from vigil.cli.chat.common import (
    Profile,
    console,
    ensure_authority,
    open_client,
    passphrase,
    print_warnings,
    run,
    show,
)
from vigil.cli.chat.safety import announce_new
from vigil.cli.errors import CliError
from vigil.client.client import Client
from vigil.protocol.wire import AgeBand

__all__ = ["add_commands"]


def parse_birth_date(text: str) -> dt.date:
    """Raises CliError naming the expected form for a malformed, impossible or future date."""
    try:
        born = dt.date.fromisoformat(text.strip())
    except ValueError as error:
        raise CliError(f"--birth-date {text!r} is not a real date in the form YYYY-MM-DD ({error})") from None
    if born > dt.date.today():
        raise CliError(f"--birth-date {text} is in the future")
    return born


def register(
    username: str = typer.Argument(..., help="Username (a-z, 0-9, _; 3-32 characters)."),
    server: str = typer.Option("http://127.0.0.1:8000", help="Server URL."),
    birth_date: str = typer.Option(..., help="Birth date, YYYY-MM-DD (stored as an age band)."),
) -> None:
    """Register a new account with this profile as its first device."""
    born = parse_birth_date(birth_date)

    async def work() -> None:
        client = await Client.register(server, username, born, Profile.path(), passphrase(confirm=True))
        try:
            # `vigil app` on this profile shows a minor's protections from the age band (kept on the device)
            band = AgeBand.from_birth_date(born, dt.date.today())
            client.store.set_secret(AGE_BAND_FIELD, band.value)
            console.print(f"registered [bold]{client.username}[/bold], device {client.device_id}")
            await ensure_authority(client)
        finally:
            await client.close()

    run(work)


def link(new_profile: str = typer.Argument(..., help="Name of the new device's profile.")) -> None:
    """Add another device to this account (authorised by this profile)."""

    async def work() -> None:
        async with await open_client() as client:
            linked = await client.link_device(Profile.home / "profiles" / f"{new_profile}.db", passphrase())
            try:
                console.print(f"linked device {linked.device_id} as profile {new_profile}")
                await ensure_authority(linked)
            finally:
                await linked.close()

    run(work)


def send(to: str, text: str) -> None:
    """Send a text message."""

    async def work() -> None:
        async with await open_client() as client:
            await client.refresh_devices(to)  # key-change warnings show before anything is sent
            print_warnings(client)
            sent = await client.send_text(to, text)
            print_warnings(client)
            console.print(f"sent to {sent.devices} device(s)")

    run(work)


def send_file(to: str, path: Path, caption: str = typer.Option("", help="Text shown with the file.")) -> None:
    """Send a file or image, encrypted on this device."""

    async def work() -> None:
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        async with await open_client() as client:
            sent = await client.send_attachment(to, path.read_bytes(), mime, name=path.name, caption=caption)
            console.print(f"sent {path.name} to {sent.devices} device(s)")

    run(work)


def receive(follow: bool = typer.Option(False, help="Keep listening for pushed messages.")) -> None:
    """Fetch (and with --follow, keep receiving) messages."""

    async def work() -> None:
        async with await open_client() as client:
            events = await client.fetch()
            for event in events:
                show(event)
            client.consume()  # shown: not again on the next run
            await announce_new(client)
            if not events and not follow:
                console.print("[dim]no new messages[/dim]")
            if follow:
                async for event in client.listen():
                    show(event)
                    client.consume()

    run(work)


def history(peer: str, limit: int = typer.Option(20, help="How many messages.")) -> None:
    """Show the locally stored conversation with PEER."""

    async def work() -> None:
        async with await open_client() as client:
            for record in client.history(peer, limit):
                payload = record["payload"]
                assert isinstance(payload, dict)
                console.print(f"[bold]{payload['sender']}[/bold]: {payload['body']}")

    run(work)


def add_commands(chat_app: typer.Typer) -> None:
    chat_app.command()(register)
    chat_app.command()(link)
    chat_app.command()(send)
    chat_app.command("send-file")(send_file)
    chat_app.command()(receive)
    chat_app.command()(history)

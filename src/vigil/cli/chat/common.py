"""What every `vigil chat` command shares: the chosen profile, the passphrase, opening its client with the
hash-list authority key pinned (so on-device image matching runs), running one client task with errors
shown as `error (code): detail`, and how events and warnings are printed."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TypeVar

import httpx
import typer
from rich.console import Console
from rich.markup import escape

from vigil.cli.errors import debugging
from vigil.client.client import Client
from vigil.client.events import (
    Event,
    GroupUpdated,
    ImageWithheld,
    KeyChangeWarning,
    MessageEvent,
    RejectedDelivery,
    SasCancelled,
    SasCompleted,
    SasRequested,
    SasShowCode,
    VerificationEvent,
)
from vigil.client.safety import AuthorityPin
from vigil.client.transport import ServerError
from vigil.errors import PolicyViolation, VigilError
from vigil.safety.policy import NEUTRAL_REFUSAL

__all__ = [
    "Interactive",
    "Profile",
    "code_text",
    "console",
    "ensure_authority",
    "open_client",
    "passphrase",
    "print_warning",
    "print_warnings",
    "run",
    "show",
    "show_security_event",
]

console = Console()
T = TypeVar("T")


class Profile:
    """The profile (device) this invocation acts as; set by the `vigil chat` options."""

    name: str = "default"
    home: Path = Path.home() / ".vigil"
    authority: str | None = None  # --hashlist-authority-key / VIGIL_HASHLIST_AUTHORITY_KEY

    @classmethod
    def path(cls) -> Path:
        return cls.home / "profiles" / f"{cls.name}.db"


def passphrase(confirm: bool = False) -> str:
    from_env = os.environ.get("VIGIL_PASSPHRASE")
    if from_env:
        return from_env
    return str(typer.prompt("Passphrase for this profile", hide_input=True, confirmation_prompt=confirm))


def pin_text(pin: AuthorityPin) -> str:
    origin = {
        "configuration": "from your configuration",
        "server": "as named by the server (trusted on first use)",
        "pinned": "pinned earlier",
    }[pin.source]
    return f"hash-list authority key {origin}: fingerprint [bold]{pin.fingerprint}[/bold]"


async def ensure_authority(client: Client) -> AuthorityPin | None:
    """Pins the hash-list authority key (see `ImageSafety.ensure_authority`) and says so when it is new,
    with the fingerprint to compare against the one the operator publishes. Without a key on the server
    or the server out of reach, matching stays off and the user is told; a configured key that differs
    from the pinned one is an error (ConflictError)."""
    try:
        pin = await client.safety.ensure_authority(Profile.authority)
    except (ServerError, httpx.HTTPError) as error:
        console.print(
            f"[yellow]could not fetch the hash-list authority key ({error}); image matching is off[/yellow]"
        )
        return None
    if pin is None:
        console.print(
            "[yellow]the server names no hash-list authority key and none is configured "
            "(--hashlist-authority-key): on-device image matching is off[/yellow]"
        )
    elif pin.newly:
        console.print(pin_text(pin) + "; compare it with the one your provider publishes")
    return pin


class Interactive:
    """Set while `vigil chat` runs interactively: every command then uses this one open client, on the
    session's event loop (in its own thread), one at a time with the live receiver (`lock`)."""

    client: Client | None = None
    loop: asyncio.AbstractEventLoop | None = None
    lock: asyncio.Lock | None = None

    @classmethod
    async def locked(cls, work: Callable[[], Coroutine[object, object, T]]) -> T:
        assert cls.lock is not None
        async with cls.lock:
            return await work()


class _Borrowed:
    """The interactive session's client for one command: leaving `async with` marks what the command was
    handed as consumed (as a clean close would) but keeps the client open for the next command."""

    def __init__(self, client: Client) -> None:
        self._client = client

    async def __aenter__(self) -> Client:
        return self._client

    async def __aexit__(self, exc_type: type[BaseException] | None, *_exc: object) -> None:
        if exc_type is None:
            self._client.consume()


async def open_client() -> contextlib.AbstractAsyncContextManager[Client]:
    """The profile's client, its hash-list authority key pinned (or, interactively, the session's open
    client), to use as `async with await open_client() as client`. Raises what `Client.open` raises."""
    if Interactive.client is not None:
        return _Borrowed(Interactive.client)
    client = await Client.open(Profile.path(), passphrase())
    try:
        await ensure_authority(client)
    except BaseException:
        await client.close()
        raise
    return client


def run(work: Callable[[], Coroutine[object, object, T]]) -> T:
    """Runs `work` (on the interactive session's loop when there is one); a VigilError is printed and exits
    with status 1."""
    try:
        if Interactive.loop is not None:
            return asyncio.run_coroutine_threadsafe(Interactive.locked(work), Interactive.loop).result()
        return asyncio.run(work())
    except VigilError as error:
        if debugging():
            raise
        console.print(f"[red]error[/red] ({error.code}): {escape(error.detail)}", soft_wrap=True)
        if isinstance(error, PolicyViolation) and error.detail == NEUTRAL_REFUSAL:
            # The server does not say why (a minor's protection, a block, a restriction): neither may we.
            console.print(
                f"if you know them, ask to connect with `vigil chat --profile {Profile.name} "
                "request USER`; you can message them once they accept"
            )
        raise typer.Exit(1) from error


def show(event: Event) -> None:
    if isinstance(event, ImageWithheld):
        console.print(f"[red]image from {escape(event.sender)} withheld:[/red] {escape(event.notice)}")
        return
    if not isinstance(event, MessageEvent | RejectedDelivery):
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
        saved = Profile.home / "downloads" / (event.attachment.name or f"{event.message_id}.bin")
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_bytes(event.attachment.data)
        attachment = f" [attachment {event.attachment.mime}, saved to {saved}]"
    console.print(f"[dim]{when}[/dim] [bold]{escape(who)}[/bold]: {escape(event.text + attachment)}")


def show_security_event(event: GroupUpdated | VerificationEvent) -> None:
    match event:
        case GroupUpdated():
            console.print(
                f"[cyan]group {event.group_id}[/cyan] is now called {escape(event.name)!r} (by {event.by})"
            )
        case KeyChangeWarning():
            print_warning(event)
        case SasRequested():
            console.print(
                f"[yellow]{event.username} ({event.device_id}) wants to verify: `verify --accept`[/yellow]"
            )
        case SasShowCode():
            console.print(code_text(event))
        case SasCompleted():
            console.print(f"[green]verified {event.username} ({event.device_id})[/green]")
        case SasCancelled():
            console.print(
                f"[red]verifying {event.username} cancelled[/red] ({event.code}) {escape(event.reason)}"
            )


def print_warning(warning: KeyChangeWarning) -> None:
    parts = [f"{len(warning.added)} new device(s)"] if warning.added else []
    parts += [f"{len(warning.removed)} removed"] if warning.removed else []
    parts += [f"changed keys on {', '.join(warning.changed_keys)}"] if warning.changed_keys else []
    if warning.was_verified:
        console.print(
            f"[bold red]WARNING: keys of VERIFIED contact {warning.username} changed ({'; '.join(parts)}). "
            f"Sending to them is blocked until you run `vigil chat verify {warning.username} --acknowledge` "
            "(and verify again).[/bold red]"
        )
    else:
        console.print(f"[yellow]note: {warning.username}'s devices changed ({'; '.join(parts)})[/yellow]")


def print_warnings(client: Client) -> None:
    for warning in client.verification.take_warnings():
        print_warning(warning)


def code_text(event: SasShowCode) -> str:
    emoji = "  ".join(f"{e.emoji} {e.description}" for e in event.emoji)
    decimals = " ".join(str(d) for d in event.decimals)
    return f"compare with {event.username}'s screen:\n  {emoji}\n  or the numbers {decimals}"

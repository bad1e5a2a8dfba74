"""`vigil chat delete-device DEVICE_ID` and `vigil chat delete-account`: a user removes a device, or the
whole account, from the server. The server answers what it deleted and what it kept (for an open safety
case or a legal preservation hold), why and until when; both are printed."""

from __future__ import annotations

import typer
from rich.markup import escape

from vigil.cli.chat.common import Profile, console, open_client, run
from vigil.protocol.deletion import DeletionReport

__all__ = ["add_commands"]


def _show(report: DeletionReport) -> None:
    console.print("[bold]deleted[/bold]")
    for line in report.deleted:
        console.print(f"  {escape(line)}")
    if not report.kept:
        console.print("[bold]kept[/bold] [dim](nothing)[/dim]")
    for kept in report.kept:
        console.print(f"[bold]kept[/bold] {escape(kept.what)}")
        console.print(f"  why: {escape(kept.why)}")
        console.print(f"  until: {escape(kept.until)}")


def delete_device(device_id: str = typer.Argument(..., help="The device to delete.")) -> None:
    """Delete one of this account's devices (not its only one: use delete-account)."""

    async def work() -> None:
        async with await open_client() as client:
            _show(await client.delete_device(device_id))

    run(work)


def delete_account(
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Delete this account on the server, then this profile's local store."""
    if not yes and not typer.confirm(f"Delete the account of profile {Profile.name} for good?"):
        raise typer.Exit(1)

    async def work() -> DeletionReport:
        async with await open_client() as client:
            return await client.delete_account()

    _show(run(work))
    path = Profile.path()
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    console.print(f"profile {escape(Profile.name)} removed from this computer")


def add_commands(chat_app: typer.Typer) -> None:
    chat_app.command("delete-device")(delete_device)
    chat_app.command("delete-account")(delete_account)

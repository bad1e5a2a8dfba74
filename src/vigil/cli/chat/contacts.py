"""`vigil chat contacts | request | requests | accept | ignore | block-request | report-account`: the
minors' protective defaults from the command line.

A minor receives direct messages only from connected accounts; anyone else sends a contact request
(no text, no media), which the minor can accept, ignore, block or report. Safety notices (signed by the
server, verified here) are shown by `vigil chat notices` in `safety.py`, next to the safety team's
warnings, with the block and report actions spelled out as commands.
"""

from __future__ import annotations

import datetime as dt

import typer
from rich.markup import escape

from vigil.cli.chat.common import console, open_client, run
from vigil.protocol.contacts import ContactRequestView
from vigil.protocol.reports import ReportReason

__all__ = ["add_commands", "request_line"]


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M")


def request_line(view: ContactRequestView, *, incoming: bool) -> str:
    """One request as a line: `#ID from|to USER (state, when)`."""
    peer = view.requester if incoming else view.recipient
    direction = "from" if incoming else "to"
    when = _when(view.created_at_ms)
    return f"#{view.id} {direction} [bold]{escape(peer)}[/bold] ({view.state.value}, {when})"


def contacts() -> None:
    """The accounts this one is connected to (an accepted contact request, either way)."""

    async def work() -> None:
        async with await open_client() as client:
            found = await client.contacts()
            for name in found:
                console.print(escape(name))
            if not found:
                console.print("[dim]no contacts yet[/dim]")

    run(work)


def request(user: str = typer.Argument(..., help="Who to ask to connect.")) -> None:
    """Send USER a contact request. It carries no text or media: only who asks whom."""

    async def work() -> None:
        async with await open_client() as client:
            view = await client.request_contact(user)
            console.print(f"contact request #{view.id} sent to {escape(view.recipient)} ({view.state.value})")

    run(work)


def requests() -> None:
    """Pending contact requests: incoming (answer: accept / ignore / block-request ID) and outgoing."""

    async def work() -> None:
        async with await open_client() as client:
            listed = await client.contact_requests()
            console.print("[bold]incoming[/bold]" + ("" if listed.incoming else " [dim](none)[/dim]"))
            for view in listed.incoming:
                console.print("  " + request_line(view, incoming=True))
            if listed.incoming:
                console.print(
                    "  [dim]answer: accept ID | ignore ID | block-request ID | "
                    "report-account USER --reason ...[/dim]"
                )
            console.print("[bold]outgoing[/bold]" + ("" if listed.outgoing else " [dim](none)[/dim]"))
            for view in listed.outgoing:
                console.print("  " + request_line(view, incoming=False))

    run(work)


def accept(request_id: int = typer.Argument(..., metavar="ID", help="The request's number.")) -> None:
    """Accept a contact request: you and the requester can then message each other."""

    async def work() -> None:
        async with await open_client() as client:
            view = await client.accept_request(request_id)
            console.print(f"accepted #{view.id}: you are now connected to {escape(view.requester)}")

    run(work)


def ignore(request_id: int = typer.Argument(..., metavar="ID", help="The request's number.")) -> None:
    """Ignore a contact request (the requester is not told)."""

    async def work() -> None:
        async with await open_client() as client:
            view = await client.ignore_request(request_id)
            console.print(f"ignored #{view.id} from {escape(view.requester)}")

    run(work)


def block_request(
    request_id: int = typer.Argument(..., metavar="ID", help="The request's number."),
) -> None:
    """Decline a contact request and block its sender."""

    async def work() -> None:
        async with await open_client() as client:
            view = await client.block_request(request_id)
            console.print(f"declined #{view.id} and blocked {escape(view.requester)}")

    run(work)


def report_account(
    user: str = typer.Argument(..., help="The account you report."),
    reason: ReportReason = typer.Option(..., help="Why you report it."),
    block: bool = typer.Option(True, help="Also block USER (the default)."),
) -> None:
    """Report an account without a message (from a contact request or a safety notice)."""

    async def work() -> None:
        async with await open_client() as client:
            accepted = await client.report_account(user, reason, block=block)
            console.print(
                f"reported {escape(accepted.reported)} (case {accepted.case_id})"
                + (", and blocked" if accepted.blocked else "")
            )

    run(work)


def add_commands(chat_app: typer.Typer) -> None:
    chat_app.command()(contacts)
    chat_app.command()(request)
    chat_app.command()(requests)
    chat_app.command()(accept)
    chat_app.command()(ignore)
    chat_app.command("block-request")(block_request)
    chat_app.command("report-account")(report_account)

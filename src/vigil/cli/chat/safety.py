"""`vigil chat report | block | unblock | notices | safety`: reporting and blocking from the command line,
and what this device's known-image matching runs on.

`notices` shows both kinds: the safety team's warnings (issue 4) and the signed safety notices of the
minors' protective defaults (issue 6, verified on this device; contact requests are in contacts.py)."""

from __future__ import annotations

import typer
from rich.markup import escape

from vigil.cli.chat.common import Interactive, Profile, console, open_client, passphrase, pin_text, run
from vigil.client.client import Client
from vigil.client.contacts import SafetyNotice
from vigil.client.safety import AuthorityPin
from vigil.errors import NotFoundError, VigilError
from vigil.protocol.contacts import NoticeAction
from vigil.protocol.group_wire import group_conversation
from vigil.protocol.reports import ReportReason

__all__ = ["add_commands", "announce_new", "safety_notice_text"]

# Per-profile cursors (sealed in the device store): what `receive` already announced.
_ANNOUNCED = {
    "warning": "cli_announced_warning",
    "notice": "cli_announced_notice",
    "request": "cli_announced_request",
}


def report(
    peer: str = typer.Argument(..., help="The account whose message you report."),
    reason: ReportReason = typer.Option(..., help="Why you report it."),
    message_id: str | None = typer.Option(None, help="The message (default: the last one PEER sent you)."),
    group: str | None = typer.Option(None, help="The message is in this group (its id), not a direct chat."),
    note: str | None = typer.Option(None, help="Anything the safety team should know."),
    context: int = typer.Option(5, help="How many earlier messages to include (0-10)."),
    block: bool = typer.Option(False, help="Also block PEER."),
) -> None:
    """Report a message to Vigil's safety team: it, its image or file, and up to CONTEXT earlier messages
    of the conversation are revealed to them, and only those."""

    async def work() -> None:
        async with await open_client() as client:
            conversation = peer if group is None else group_conversation(group)
            chosen = message_id
            if chosen is None:
                received = [
                    r
                    for r in client.history(conversation, 1000)
                    if r["payload"]["sender"] == peer  # type: ignore[index]
                ]
                if not received:
                    raise NotFoundError(f"no message from {peer} on this device")
                chosen = str(received[-1]["payload"]["message_id"])  # type: ignore[index]
            accepted = await client.report(
                chosen, reason, conversation=conversation, note=note, context=context, block=block
            )
            verified = sum(accepted.verified)
            console.print(
                f"reported {accepted.reported} (case {accepted.case_id}): {verified} of "
                f"{len(accepted.verified)} messages verified" + (", and blocked" if accepted.blocked else "")
            )

    run(work)


def safety() -> None:
    """What on-device image matching runs on: the pinned hash-list authority key (with the fingerprint to
    compare against the one your provider publishes) and the list this device holds."""

    async def work() -> None:
        async with await open_client() as client:
            image_safety = client.safety
            if image_safety.authority is None:
                console.print("no hash-list authority key pinned: on-device image matching is off")
                return
            pin = AuthorityPin(image_safety.authority, "pinned", newly=False)
            console.print(f"{pin_text(pin)}\n  key {pin.key}")
            try:
                state = await image_safety.sync()
            except VigilError as error:
                console.print(f"[red]the server's hash list was refused:[/red] {escape(error.detail)}")
                state = image_safety.state
            if state is None:
                console.print("no hash list published yet: images are checked once one is")
            else:
                console.print(f"hash list version {state.version}, root {state.root.hex()}: matching is on")

    run(work)


def block(peer: str) -> None:
    """Block PEER: the server refuses their messages to you."""

    async def work() -> None:
        async with await open_client() as client:
            await client.block(peer)
            console.print(f"blocked {peer}")

    run(work)


def unblock(peer: str) -> None:
    """Unblock PEER."""

    async def work() -> None:
        async with await open_client() as client:
            await client.unblock(peer)
            console.print(f"unblocked {peer}")

    run(work)


def notices() -> None:
    """Everything the safety layer told this account: warnings from the safety team (after a review)
    and safety notices about accounts that reached you (signed by the server, verified here), each
    with its block / report actions."""

    async def work() -> None:
        async with await open_client() as client:
            warnings = await client.notices()
            safety = await client.safety_notices()
            for notice in warnings:
                console.print(f"[yellow]from the safety team ({notice.kind})[/yellow]: {escape(notice.text)}")
            for shown in safety:
                console.print(safety_notice_text(shown, client.username))
            if client.rejected_notices:
                console.print(
                    f"[red]dropped {len(client.rejected_notices)} safety notice(s) that failed "
                    "verification[/red]"
                )
            if not warnings and not safety:
                console.print("[dim]no notices[/dim]")

    run(work)


async def announce_new(client: Client) -> None:
    """Announces what reached this account since the last announcement: the safety team's warnings and
    restrictions, signed safety notices, and incoming contact requests (with the command that answers
    them), so `receive` shows them where messages are read, not only under `notices` and `requests`."""
    from vigil.cli.chat.contacts import request_line

    def cursor(name: str) -> int:
        return int(client.store.get_secret(_ANNOUNCED[name]) or 0)

    def advance(name: str, ids: list[int]) -> None:
        if ids:
            client.store.set_secret(_ANNOUNCED[name], str(max(ids)))

    warnings = await client.notices(after=cursor("warning"))
    for warning in warnings:
        console.print(f"[yellow]from the safety team ({warning.kind})[/yellow]: {escape(warning.text)}")
    advance("warning", [w.id for w in warnings])
    notices = await client.safety_notices(after=cursor("notice"))
    for notice in notices:
        console.print(safety_notice_text(notice, client.username))
    advance("notice", [n.id for n in notices])
    seen = cursor("request")
    incoming = [r for r in (await client.contact_requests()).incoming if r.id > seen]
    for request in incoming:
        console.print(f"[yellow]contact request[/yellow] {request_line(request, incoming=True)}")
    if incoming:
        console.print(
            f"[dim]answer with `vigil chat --profile {Profile.name} accept|ignore|block-request ID`[/dim]"
        )
    advance("request", [r.id for r in incoming])


def appeal(
    reason: str = typer.Option(..., help="Why the action on your account should be lifted (1-1000 chars)."),
) -> None:
    """Appeal the latest action on your account (warning, restriction or suspension), once. Works while
    suspended; the safety team's answer arrives as a signed notice (`vigil chat receive`, or while still
    suspended `vigil chat notices`, which a suspended account can read)."""

    async def work() -> None:
        # Opened without the hash-list pin: a suspended account can reach nothing but the appeal.
        async with (
            await open_client()
            if Interactive.client is not None
            else await Client.open(Profile.path(), passphrase())
        ) as client:
            accepted = await client.appeal(reason)
            console.print(
                f"appeal {accepted.appeal_id} against the {accepted.action} decision sent to the safety team"
            )

    run(work)


def add_commands(chat_app: typer.Typer) -> None:
    chat_app.command()(report)
    chat_app.command()(appeal)
    chat_app.command()(safety)
    chat_app.command()(block)
    chat_app.command()(unblock)
    chat_app.command()(notices)


def safety_notice_text(notice: SafetyNotice, me: str) -> str:
    """A verified safety notice and its actions as the commands that carry them out; a notice about an
    action on this account (`me`) says so rather than naming it."""
    subject = notice.subject
    about = "[bold]your account[/bold]" if subject == me else f"[bold]{escape(subject)}[/bold]"
    actions = []
    for action in notice.actions:
        match action:
            case NoticeAction.BLOCK:
                actions.append(f"block {subject}")
            case NoticeAction.REPORT:
                actions.append(f"report-account {subject} --reason grooming")
    return (
        f"[bold magenta]safety notice #{notice.id}[/bold magenta] (verified, {notice.kind}) about "
        f"{about}: {escape(notice.text)}"
        + (f"\n  [dim]actions: {escape(' | '.join(actions))}[/dim]" if actions else "")
    )

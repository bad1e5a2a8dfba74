"""`vigil chat group ...` and `vigil chat verify`: encrypted groups, safety numbers, SAS, key-change warnings.

Key-change warnings are printed before a send (the device list is refreshed first) and after it; a
verified contact whose keys changed makes the send fail with `verification_required` until
`vigil chat verify <user> --acknowledge`.
"""

from __future__ import annotations

import asyncio

import typer
from rich.markup import escape

from vigil.cli.chat.common import (
    code_text,
    console,
    open_client,
    print_warnings,
    run,
    show,
    show_security_event,
)
from vigil.client.client import Client
from vigil.client.events import (
    Event,
    GroupUpdated,
    KeyChangeWarning,
    SasCancelled,
    SasCompleted,
    SasRequested,
    SasShowCode,
)
from vigil.client.verification import VerificationState
from vigil.protocol.verification import SasCancelCode

__all__ = ["add_commands", "group_app"]

group_app = typer.Typer(
    help="Encrypted groups: create, add/remove members, invite links, join, leave, list, send."
)


async def _group_work(work: str, *args: str) -> None:
    async with await open_client() as client:
        match work:
            case "create":
                name, topic, *members = args
                info = await client.groups.create(list(members), name=name, topic=topic)
                console.print(f"created group {info.group_id} with {len(info.members)} member(s)")
            case "list":
                for summary in (await client.groups.list_groups()).groups:
                    meta = client.groups.meta(summary.group_id)
                    name = escape(meta.name) if meta else "(no name yet)"
                    console.print(
                        f"{summary.group_id}  {name}  {summary.members} member(s), you are {summary.role}"
                    )
            case "members":
                for member in (await client.groups.info(args[0])).members:
                    state = client.verification.state(member.username).value
                    console.print(f"{member.username}  {member.role}  {state}")
            case "add":
                await client.groups.add_member(args[0], args[1])
                console.print(f"added {args[1]}")
            case "remove":
                await client.groups.remove_member(args[0], args[1])
                console.print(f"removed {args[1]}; the next message uses a new group key")
            case "link":
                link = await client.groups.create_invite_link(args[0])
                console.print(f"invite token: {link.token}")
                console.print("shown once; the group's previous link no longer works")
            case "unlink":
                await client.groups.revoke_invite_link(args[0])
                console.print("revoked the group's invite link")
            case "join":
                info = await client.groups.join(args[0])
                console.print(f"joined group {info.group_id} ({len(info.members)} member(s))")
            case "leave":
                await client.groups.leave(args[0])
                console.print("left the group")
            case "send":
                await client.groups.member_devices(args[0], refresh=True)
                print_warnings(client)
                sent = await client.groups.send_text(args[0], args[1])
                print_warnings(client)
                console.print(f"sent to {sent.devices} device(s) in the group")


@group_app.command("create")
def group_create(
    members: list[str] = typer.Argument(None, help="Usernames to add."),
    name: str = typer.Option("", help="Group name (members see it; the server never does)."),
    topic: str = typer.Option("", help="Group topic (end-to-end encrypted too)."),
) -> None:
    """Create a group with you as admin."""
    run(lambda: _group_work("create", name, topic, *(members or [])))


@group_app.command("list")
def group_list() -> None:
    """Groups you are in."""
    run(lambda: _group_work("list"))


@group_app.command("members")
def group_members(group_id: str) -> None:
    """Members, roles and your verification state for each."""
    run(lambda: _group_work("members", group_id))


@group_app.command("add")
def group_add(group_id: str, username: str) -> None:
    """Add a member (admins only). They cannot read earlier messages."""
    run(lambda: _group_work("add", group_id, username))


@group_app.command("remove")
def group_remove(group_id: str, username: str) -> None:
    """Remove a member (admins only). They cannot read later messages."""
    run(lambda: _group_work("remove", group_id, username))


@group_app.command("link")
def group_link(group_id: str) -> None:
    """Issue an invite link (admins only); whoever holds its token can ask to join. Replaces the old one."""
    run(lambda: _group_work("link", group_id))


@group_app.command("unlink")
def group_unlink(group_id: str) -> None:
    """Revoke the group's invite link (admins only)."""
    run(lambda: _group_work("unlink", group_id))


@group_app.command("join")
def group_join(token: str) -> None:
    """Join a group by an invite link's token. The same safety rules apply as to being added."""
    run(lambda: _group_work("join", token))


@group_app.command("leave")
def group_leave(group_id: str) -> None:
    """Leave a group."""
    run(lambda: _group_work("leave", group_id))


@group_app.command("send")
def group_send(group_id: str, text: str) -> None:
    """Send a text message to a group (one Megolm ciphertext for every member device)."""
    run(lambda: _group_work("send", group_id, text))


def verify(
    username: str = typer.Argument("", help="The contact to verify (empty with --accept: anyone)."),
    confirm: str = typer.Option("", help="Mark verified: the safety number you compared (digits)."),
    sas: bool = typer.Option(False, "--sas", help="Start interactive emoji verification."),
    accept: bool = typer.Option(False, "--accept", help="Wait for a verification request and answer it."),
    acknowledge: bool = typer.Option(
        False, "--acknowledge", help="Acknowledge a verified contact's key change."
    ),
    yes: bool = typer.Option(False, "--yes", help="Treat the short strings as matching (scripts, tests)."),
    timeout: float = typer.Option(120, help="Seconds to wait for the other side."),
) -> None:
    """Show the safety number with USERNAME, confirm it, or run SAS (emoji) verification."""

    async def work() -> None:
        async with await open_client() as client:
            if acknowledge:
                client.verification.acknowledge_key_change(username)
                console.print(f"{username} is now unverified; sending is allowed again. Verify again soon.")
            elif sas or accept:
                await asyncio.wait_for(_run_sas(client, username, initiate=sas, auto_yes=yes), timeout)
            else:
                number = await client.verification.safety_number(username)
                print_warnings(client)
                if confirm:
                    await client.verification.confirm_safety_number(username, confirm)
                state = client.verification.state(username)
                console.print(f"safety number with {username}:\n  {number}\nstate: {state.value}")

    run(work)


async def _run_sas(client: Client, peer: str, *, initiate: bool, auto_yes: bool) -> None:
    transaction = await client.verification.start_sas(peer) if initiate else None
    if transaction is not None:
        console.print(f"asked {peer} to verify; waiting for them to accept")
    loop = asyncio.get_running_loop()
    async for event in client.listen():
        done = await _sas_step(client, event, peer, transaction, auto_yes, loop)
        client.consume()
        if isinstance(event, SasRequested) and transaction is None and (not peer or event.username == peer):
            transaction = event.transaction_id
        if done:
            state = client.verification.state(peer or getattr(event, "username", peer))
            console.print(f"state: {state.value}")
            if state is not VerificationState.VERIFIED:
                raise typer.Exit(1)
            return


async def _sas_step(
    client: Client,
    event: Event,
    peer: str,
    transaction: str | None,
    auto_yes: bool,
    loop: asyncio.AbstractEventLoop,
) -> bool:
    """Handles one event of a SAS run; True when the run is over."""
    match event:
        case SasRequested() if transaction is None and (not peer or event.username == peer):
            console.print(f"{event.username} ({event.device_id}) asked to verify; accepting")
            await client.verification.accept_sas(event.transaction_id)
        case SasShowCode():
            console.print(code_text(event))
            same = auto_yes or await loop.run_in_executor(None, typer.confirm, "Do they match?")
            if not same:
                await client.verification.cancel_sas(event.transaction_id, SasCancelCode.MISMATCHED_SAS)
                console.print("[red]cancelled: the codes differ (someone may be intercepting)[/red]")
                return True
            result = await client.verification.confirm_sas(event.transaction_id)
            if result is not None:
                show_security_event(result)
                return True
        case SasCompleted() | SasCancelled():
            show_security_event(event)
            return True
        case GroupUpdated() | KeyChangeWarning() | SasRequested():
            show_security_event(event)
        case _:
            show(event)
    return False


def add_commands(chat_app: typer.Typer) -> None:
    chat_app.add_typer(group_app, name="group")
    chat_app.command("verify")(verify)

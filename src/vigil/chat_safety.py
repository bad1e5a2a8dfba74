"""`vigil chat report | block | unblock | notices`: reporting and blocking from the command line."""

from __future__ import annotations

import typer

from vigil.errors import NotFoundError
from vigil.protocol.reports import ReportReason

__all__ = ["register"]


def register(chat_app: typer.Typer) -> None:
    from vigil.chat import _passphrase, _Profile, _run, console
    from vigil.client.client import Client

    @chat_app.command()
    def report(
        peer: str = typer.Argument(..., help="The account whose message you report."),
        reason: ReportReason = typer.Option(..., help="Why you report it."),
        message_id: str | None = typer.Option(
            None, help="The message (default: the last one PEER sent you)."
        ),
        note: str | None = typer.Option(None, help="Anything the safety team should know."),
        context: int = typer.Option(5, help="How many earlier messages to include (0-10)."),
        block: bool = typer.Option(False, help="Also block PEER."),
    ) -> None:
        """Report a message to Vigil's safety team; its content is revealed to them, and only it."""

        async def work() -> None:
            async with await Client.open(_Profile.path(), _passphrase()) as client:
                chosen = message_id
                if chosen is None:
                    received = [r for r in client.history(peer, 1000) if r["payload"]["sender"] == peer]  # type: ignore[index]
                    if not received:
                        raise NotFoundError(f"no message from {peer} on this device")
                    chosen = str(received[-1]["payload"]["message_id"])  # type: ignore[index]
                accepted = await client.report(
                    chosen, reason, conversation=peer, note=note, context=context, block=block
                )
                verified = sum(accepted.verified)
                console.print(
                    f"reported {accepted.reported} (case {accepted.case_id}): {verified} of "
                    f"{len(accepted.verified)} messages verified"
                    + (", and blocked" if accepted.blocked else "")
                )

        _run(work)

    @chat_app.command()
    def block(peer: str) -> None:
        """Block PEER: the server refuses their messages to you."""

        async def work() -> None:
            async with await Client.open(_Profile.path(), _passphrase()) as client:
                await client.block(peer)
                console.print(f"blocked {peer}")

        _run(work)

    @chat_app.command()
    def unblock(peer: str) -> None:
        """Unblock PEER."""

        async def work() -> None:
            async with await Client.open(_Profile.path(), _passphrase()) as client:
                await client.unblock(peer)
                console.print(f"unblocked {peer}")

        _run(work)

    @chat_app.command()
    def notices() -> None:
        """Notices from the safety team to this account."""

        async def work() -> None:
            async with await Client.open(_Profile.path(), _passphrase()) as client:
                found = await client.notices()
                for notice in found:
                    console.print(f"[yellow]{notice.kind}[/yellow]: {notice.text}")
                if not found:
                    console.print("[dim]no notices[/dim]")

        _run(work)

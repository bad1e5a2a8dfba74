"""`vigil demo`: three people chat through an embedded server, one of them offline for a while, one
message with an image; then what each client saw is printed beside what the server stored. Then a known
(harmless, demo-listed) image is withheld by the sender's device and followed to a finished CyberTipline
report on a stand-in (`vigil.cli.demo_cybertip`)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import io
import sqlite3
import tempfile
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vigil.cli.demo_cybertip import run_cybertip_act
from vigil.cli.serving import create_served_app
from vigil.client.client import Client
from vigil.client.events import Event, MessageEvent, RejectedDelivery
from vigil.server.embedded import embedded_server

__all__ = ["run_demo"]

PASSPHRASE = "demo passphrase, not for real use"  # noqa: S105 - the demo's throw-away profiles


def demo_image() -> bytes:
    """A small generated PNG (a gradient), so the demo needs no files."""
    from PIL import Image

    image = Image.new("RGB", (64, 48))
    image.putdata([(x * 4, y * 5, 128) for y in range(48) for x in range(64)])
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _describe(event: Event) -> str:
    if isinstance(event, RejectedDelivery):
        return f"rejected from {event.sender}: {event.reason}"
    if not isinstance(event, MessageEvent):
        return type(event).__name__  # groups, verification and safety events do not occur in this demo
    text = event.text or ""
    if event.attachment is not None:
        size = len(event.attachment.data)
        text = f"{text} [image {event.attachment.mime}, {size} bytes, hash verified]".strip()
    direction = (
        f"(sent from my other device to {event.conversation})" if event.outgoing else f"from {event.sender}"
    )
    return f"{direction}: {text}"


def _server_view(data_dir: Path) -> list[tuple[str, str]]:
    db = sqlite3.connect(data_dir / "vigil.db")
    rows: list[tuple[str, str]] = []
    for sender, conversation, kind, commitment, tag in db.execute(
        "SELECT u.username, m.conversation, m.kind, m.commitment, m.franking_tag"
        " FROM messages m JOIN users u ON u.id = m.sender_user_id ORDER BY m.id"
    ):
        rows.append(
            (
                f"message {sender} -> {conversation} ({kind})",
                f"commitment {bytes(commitment).hex()[:16]}..  tag {bytes(tag).hex()[:16]}..",
            )
        )
    # A group message's body is stored once on its message row, not per queue entry.
    for device, body in db.execute(
        "SELECT q.device_id, COALESCE(q.body, m.shared_body) FROM queue q"
        " JOIN messages m ON m.id = q.message_id ORDER BY q.id"
    ):
        rows.append((f"queued for device {device}", base64.b64encode(bytes(body)).decode()[:48] + ".."))
    for blob_id, size in db.execute("SELECT id, size FROM blobs"):
        blob = (data_dir / "blobs" / blob_id[:2] / blob_id).read_bytes()
        rows.append((f"blob {blob_id[:12]}.. ({size} bytes)", "ciphertext " + blob[:18].hex() + ".."))
    db.close()
    return rows


def _print_tables(console: Console, seen: dict[str, list[str]], stored: list[tuple[str, str]]) -> None:
    clients = Table(title="What the clients see (decrypted on the device)", show_lines=False)
    clients.add_column("client")
    clients.add_column("event")
    for name, lines in seen.items():
        for line in lines:
            clients.add_row(name, escape(line))
    console.print(clients)
    server = Table(title="What the server stored (ciphertext and metadata only)")
    server.add_column("row")
    server.add_column("content")
    for label, content in stored:
        server.add_row(label, content)
    console.print(server)
    console.print(
        "The server never saw the text or the image: it relayed Olm ciphertext and kept franking tags."
    )


async def run_demo(console: Console, workdir: Path | None = None) -> dict[str, list[str]]:
    """Runs the scenario and prints it; returns what each client saw (for tests)."""
    root = workdir or Path(tempfile.mkdtemp(prefix="vigil-demo-"))
    data_dir = root / "server"
    seen: dict[str, list[str]] = {"alice": [], "bob": [], "carol": []}
    async with embedded_server(data_dir, app_factory=create_served_app) as url:
        console.print(f"[bold]Vigil demo[/bold]: server on {url}, data in {data_dir}")
        born = dt.date(1990, 1, 1)
        alice = await Client.register(url, "alice", born, root / "alice.db", PASSPHRASE)
        bob = await Client.register(url, "bob", born, root / "bob.db", PASSPHRASE)
        carol = await Client.register(url, "carol", born, root / "carol.db", PASSPHRASE)
        console.print("alice, bob and carol registered; carol goes offline.")

        await alice.send_text("bob", "Hi Bob! Lunch tomorrow?")
        seen["bob"] += [_describe(e) for e in await bob.fetch()]
        await bob.send_text("alice", "Sure, 12:30 at the usual place.")
        await bob.send_attachment(
            "alice", demo_image(), "image/png", name="map.png", caption="here's the map"
        )
        seen["alice"] += [_describe(e) for e in await alice.fetch()]
        await alice.send_text("carol", "Carol, are you coming too?")
        await bob.send_text("carol", "We'd love to see you.")
        await asyncio.sleep(0.05)
        console.print("carol comes back online and catches up:")
        seen["carol"] += [_describe(e) for e in await carol.fetch()]
        await carol.send_text("alice", "Yes! See you there.")
        seen["alice"] += [_describe(e) for e in await alice.fetch()]
        # The server view is read while the last messages still wait in carol's and alice's queues.
        await alice.send_text("carol", "Great, see you!")
        await bob.send_attachment("carol", demo_image(), "image/png", name="map.png")
        stored = _server_view(data_dir)
        for client in (alice, bob, carol):
            await client.close()
        _print_tables(console, seen, stored)
        await run_cybertip_act(console, url, data_dir, root, "bob", PASSPHRASE)
    return seen

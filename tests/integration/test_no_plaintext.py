"""The server never holds plaintext: canary strings sent as text and inside an attachment must not appear
in the database (SQLite file bytes or every PostgreSQL table), the blob store, or the server log; nor may
the keys that protect them. The clients' own stores are encrypted at rest too."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import re
import secrets
from pathlib import Path

import httpx
import pytest
from helpers import register, texts

from vigil.client.events import MessageEvent
from vigil.errors import PolicyViolation
from vigil.protocol.reports import ReportReason


def _database_bytes(server) -> bytes:
    url: str = server.database_url
    if url.startswith("sqlite"):
        db = server.data_dir / "vigil.db"
        return b"".join(p.read_bytes() for p in db.parent.glob("vigil.db*"))
    import psycopg2

    connection = psycopg2.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    dump = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        for (table,) in cursor.fetchall():
            cursor.execute(f'SELECT * FROM "{table}"')
            for row in cursor.fetchall():
                for value in row:
                    dump.append(bytes(value) if isinstance(value, memoryview) else str(value).encode())
    connection.close()
    return b"\n".join(dump)


def _blob_bytes(server) -> bytes:
    return b"".join(p.read_bytes() for p in (server.data_dir / "blobs").rglob("*") if p.is_file())


def _forms(secret: bytes) -> list[bytes]:
    return [secret, base64.b64encode(secret), base64.b64encode(secret).rstrip(b"="), secret.hex().encode()]


async def test_no_canary_or_key_material_reaches_server_storage_or_logs(server, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    text_canary = f"CANARY-TEXT-{secrets.token_hex(8)}"
    file_canary = f"CANARY-FILE-{secrets.token_hex(8)}".encode()
    await alice.send_text(bob.username, text_canary)
    await alice.send_attachment(bob.username, file_canary * 50, "application/pdf", name="notes.pdf")
    blobs_while_stored = _blob_bytes(server)
    assert blobs_while_stored, "the encrypted blob should be on the server until fetched"

    events = await bob.fetch()
    assert texts(events)[0] == text_canary
    attachment_event = events[1]
    assert isinstance(attachment_event, MessageEvent) and attachment_event.attachment is not None
    assert attachment_event.attachment.data == file_canary * 50

    records = alice.history(bob.username)
    secrets_to_hide = [
        base64.b64decode(records[0]["payload"]["franking_key"]),  # type: ignore[index]
        base64.b64decode(records[1]["payload"]["franking_key"]),  # type: ignore[index]
        base64.b64decode(records[1]["payload"]["attachment"]["key"]),  # type: ignore[index]
    ]
    credential = alice.store.get_secret("credential")
    assert credential is not None

    server.stop()  # flush the log
    surfaces = {
        "database": _database_bytes(server),
        "blobs": blobs_while_stored + _blob_bytes(server),
        "log": server.log_path.read_bytes(),
        "alice store": alice.store.path.read_bytes(),
        "bob store": bob.store.path.read_bytes(),
    }
    assert len(surfaces["log"]) > 500 and b"POST /v1/messages" in surfaces["log"]
    for name, data in surfaces.items():
        assert text_canary.encode() not in data, f"text canary found in {name}"
        assert file_canary not in data, f"attachment canary found in {name}"
        for secret in secrets_to_hide:
            for form in _forms(secret):
                assert form not in data, f"key material found in {name}"
        assert credential.encode() not in data, f"device credential found in {name}"


@pytest.mark.fresh_server  # stops the server to read its whole log
async def test_the_server_log_holds_no_client_address_username_or_identifier(server, tmp_path: Path) -> None:
    """A run over most of the API (registration, contact requests, 1:1 and group messages, attachments,
    the WebSocket, photos, blocks, reports, refused and malformed requests) leaves in the server log only
    route templates and statuses: no client address, no username, no group, blob or case id."""
    teen = await register(
        server.url, tmp_path, "teen", dt.date.today().replace(year=dt.date.today().year - 15)
    )
    adult = await register(server.url, tmp_path, "adult")
    friend = await register(server.url, tmp_path, "friend")
    await teen.accept_request((await friend.request_contact(teen.username)).id)
    await adult.request_contact(teen.username)
    with pytest.raises(PolicyViolation):
        await adult.send_text(teen.username, "hi")
    await friend.send_text(teen.username, "hello")
    sent = await friend.send_attachment(teen.username, b"x" * 300, "application/pdf", name="a.pdf")
    group = await friend.groups.create([teen.username])
    await friend.groups.send_text(group.group_id, "group hello")

    async def listen_once() -> None:
        async for _event in teen.listen():
            return

    events = await teen.fetch()
    listener = asyncio.create_task(listen_once())
    await friend.send_text(teen.username, "live")
    await asyncio.wait_for(listener, timeout=60)
    accepted = await teen.report(events[0], ReportReason.OTHER)
    await teen.block(adult.username)
    async with httpx.AsyncClient(base_url=server.url) as http:
        for path in (f"/v1/users/{teen.username}/photo", f"/v1/groups/{group.group_id}", "/v1/no/such/route"):
            await http.get(path, headers=adult.transport._headers())
        await http.post("/v1/contacts/requests", json={"username": 12}, headers=adult.transport._headers())
    server.stop()
    full_log = server.log_path.read_text()
    # From the start that succeeded (an earlier attempt whose port was taken names its own address), after
    # the operator's banner (which names the database's address).
    log = full_log[full_log.rindex("Started server process") :]

    assert "GET /v1/users/{username}/photo 404 Not Found" in log  # the template, not the path
    assert "POST /v1/messages 202 Accepted" in log
    assert "WEBSOCKET /v1/stream accepted" in log
    assert "<unmatched>" in log
    for address in re.findall(r"127\.0\.0\.1(?::\d+)?", log):
        assert address == f"127.0.0.1:{server.port}", f"a client address in the server log: {address}"
    identifiers = {
        "username": [teen.username, adult.username, friend.username],
        "group id": [group.group_id],
        "case id": [f"case:{accepted.case_id}", f"/cases/{accepted.case_id}"],
        "message id": [sent.message_id],
    }
    for kind, values in identifiers.items():
        for value in values:
            assert value not in full_log, f"a {kind} in the server log"
    for client in (teen, adult, friend):
        await client.close()

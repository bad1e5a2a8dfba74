"""Blob uploads never leave partial files behind (client gone mid-upload, body too large, body stalled,
disk full), one account cannot fill the disk (a quota of unfetched blobs, and a free-space reserve
for the database), and sends keep working when blob space is used up."""

from __future__ import annotations

import asyncio
import errno
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import register
from live_server import ServerProcess, running_server

from vigil.server.blobstore import DiskBlobStore
from vigil.server.capacity import InsufficientStorage, PayloadTooLarge


def _partial_files(server: ServerProcess) -> list[Path]:
    return list((server.data_dir / "blobs").rglob("*.part"))


def _no_partial_files_soon(server: ServerProcess, within_s: float = 10) -> None:
    deadline = time.monotonic() + within_s
    while _partial_files(server):
        assert time.monotonic() < deadline, _partial_files(server)
        time.sleep(0.05)


async def _partial_file_appears(server: ServerProcess, within_s: float = 30) -> None:
    deadline = time.monotonic() + within_s
    while not _partial_files(server):
        assert time.monotonic() < deadline, "the upload never started writing"
        await asyncio.sleep(0.02)


def _expect(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    body: dict[str, Any] = response.json()
    assert body["error"] == code and body["detail"]
    return body


@pytest.fixture
def quota_server(backend: str, tmp_path: Path) -> Iterator[ServerProcess]:
    env = {
        "VIGIL_MAX_BLOB_BYTES": "8000",
        "VIGIL_BLOB_QUOTA_BYTES_PER_ACCOUNT": "10000",
        "VIGIL_REQUEST_BODY_TIMEOUT_SECONDS": "1",
    }
    with running_server(backend, tmp_path, env) as process:
        yield process


async def _raw_upload(
    server: ServerProcess, credential: str, declared: int, sent: bytes
) -> asyncio.StreamReader:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    head = (
        f"POST /v1/blobs HTTP/1.1\r\nHost: vigil\r\nAuthorization: Bearer {credential}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {declared}\r\n\r\n"
    )
    writer.write(head.encode() + sent)
    await writer.drain()
    reader.writer = writer  # type: ignore[attr-defined]
    return reader


async def test_quota_limits_and_partial_uploads(quota_server: ServerProcess, tmp_path: Path) -> None:
    server = quota_server
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    credential = alice.store.get_secret("credential") or ""
    octets = {"Authorization": f"Bearer {credential}", "Content-Type": "application/octet-stream"}
    async with httpx.AsyncClient(base_url=server.url, headers=octets, timeout=30) as http:
        first = await http.post("/v1/blobs", content=b"a" * 6000)
        assert first.status_code == 201, first.text
        # Over the account's quota of unfetched blobs: 507, whether declared up front or streamed.
        body = _expect(await http.post("/v1/blobs", content=b"b" * 6000), 507, "insufficient_storage")
        assert "quota" in body["detail"]

        async def streamed() -> AsyncIterator[bytes]:
            for _ in range(6):
                yield b"c" * 1000

        _expect(await http.post("/v1/blobs", content=streamed()), 507, "insufficient_storage")
        # Larger than any blob may be: 413 (declared, and streamed without a length).
        _expect(await http.post("/v1/blobs", content=b"d" * 9000), 413, "too_large")
        # Within what is left of the quota: accepted.
        assert (await http.post("/v1/blobs", content=b"e" * 3000)).status_code == 201
    _no_partial_files_soon(server)

    # Another account has its own quota, and sends keep working for everyone.
    bob_credential = bob.store.get_secret("credential") or ""
    bob_octets = {"Authorization": f"Bearer {bob_credential}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        headers = {**bob_octets, "Content-Type": "application/octet-stream"}
        assert (await http.post("/v1/blobs", content=b"f" * 6000, headers=headers)).status_code == 201
    await alice.send_text(bob.username, "still sending")
    assert [e.text for e in await bob.fetch()] == ["still sending"]  # type: ignore[union-attr]

    # A client that goes away mid-upload leaves nothing behind (bob has room left for these).
    reader = await _raw_upload(server, bob_credential, 2000, b"g" * 500)
    await _partial_file_appears(server)  # the server is mid-upload, so the close tests its clean-up
    reader.writer.close()  # type: ignore[attr-defined]
    _no_partial_files_soon(server)

    # A stalled body is cut off (408, connection closed) and leaves nothing behind.
    reader = await _raw_upload(server, bob_credential, 2000, b"h" * 500)
    started = time.monotonic()
    answer = await asyncio.wait_for(reader.read(), timeout=15)
    assert time.monotonic() - started < 10
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"] == "request_timeout"
    reader.writer.close()  # type: ignore[attr-defined]
    _no_partial_files_soon(server)

    for client in (alice, bob):
        await client.close()
    server.stop()
    log = server.log_path.read_text()
    assert " 500 " not in log and "Traceback" not in log


async def test_uploads_leave_the_disk_reserve_to_the_database(backend: str, tmp_path: Path) -> None:
    with running_server(backend, tmp_path, {"VIGIL_BLOB_DISK_RESERVE_BYTES": str(2**62)}) as server:
        alice = await register(server.url, tmp_path, "alice")
        bob = await register(server.url, tmp_path, "bob")
        headers = {
            "Authorization": f"Bearer {alice.store.get_secret('credential')}",
            "Content-Type": "application/octet-stream",
        }
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            refused = await http.post("/v1/blobs", content=b"x" * 100, headers=headers)
            body = _expect(refused, 507, "insufficient_storage")
            assert "no room" in body["detail"]
        await alice.send_text(bob.username, "sends do not need blob space")
        assert [e.text for e in await bob.fetch()] == ["sends do not need blob space"]  # type: ignore[union-attr]
        assert _partial_files(server) == []
        await alice.close()
        await bob.close()


async def _chunks(*parts: bytes, then: BaseException | None = None) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
    if then is not None:
        raise then


async def test_blob_store_deletes_the_partial_file_on_every_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = DiskBlobStore(tmp_path)
    blob_id = "ab" * 16

    def partial_files() -> list[Path]:
        return list(tmp_path.rglob("*.part"))

    with pytest.raises(ConnectionResetError):  # the client went away
        await store.receive(blob_id, _chunks(b"x" * 10, then=ConnectionResetError()), max_bytes=100)
    assert partial_files() == []
    with pytest.raises(PayloadTooLarge):
        await store.receive(blob_id, _chunks(b"x" * 60, b"y" * 60), max_bytes=100)
    assert partial_files() == []
    with pytest.raises(asyncio.CancelledError):
        await store.receive(blob_id, _chunks(b"x", then=asyncio.CancelledError()), max_bytes=100)
    assert partial_files() == []

    # The disk fills up during the write: 507's error, nothing left behind.
    import vigil.server.blobstore as blobstore

    def disk_full(handle: Any, rest: bytes) -> None:
        handle.write(rest[:1])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(blobstore, "_flush", disk_full)
    with pytest.raises(InsufficientStorage):
        await store.receive(blob_id, _chunks(b"x" * 50), max_bytes=100)
    assert partial_files() == []
    monkeypatch.undo()

    assert await store.receive(blob_id, _chunks(b"x" * 50, b"y" * 50), max_bytes=100) == 100
    assert b"".join([chunk async for chunk in await store.open(blob_id)]) == b"x" * 50 + b"y" * 50
    assert partial_files() == []

"""Slow clients are cut off within the limits (headers sent a byte at a time, a connection that sends
nothing, a body that stalls) while the server keeps answering everyone else."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from live_server import ServerProcess, running_server

HEADER_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 1.0
# Generous: the limit plus a loaded machine's scheduling delays, still far below "never".
CUT_OFF_WITHIN_S = 8.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    env = {
        "VIGIL_REQUEST_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT_S),
        "VIGIL_REQUEST_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT_S),
        "VIGIL_MAX_JSON_BYTES": "2000",
    }
    with running_server("sqlite", tmp_path, env) as process:
        yield process


async def _closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sent until it closed the connection."""
    return await asyncio.wait_for(reader.read(), CUT_OFF_WITHIN_S)


async def test_slow_headers_idle_connections_and_stalled_bodies_are_cut_off(server: ServerProcess) -> None:
    port = server.port
    # Headers a byte at a time, never finished.
    slow_reader, slow_writer = await asyncio.open_connection("127.0.0.1", port)

    async def trickle() -> None:
        for byte in b"GET /v1/health HTTP/1.1\r\nHost: vigil\r\nX-Slow: " + b"a" * 1000:
            slow_writer.write(bytes([byte]))
            await asyncio.sleep(0.2)

    trickling = asyncio.create_task(trickle())
    # A connection that sends nothing at all.
    idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
    # A body that stops arriving.
    stalled_reader, stalled_writer = await asyncio.open_connection("127.0.0.1", port)
    stalled_writer.write(
        b"POST /v1/accounts HTTP/1.1\r\nHost: vigil\r\nContent-Type: application/json\r\n"
        b'Content-Length: 1000\r\n\r\n{"username": '
    )
    await stalled_writer.drain()
    started = time.monotonic()

    # Meanwhile everyone else is served.
    async with httpx.AsyncClient(base_url=server.url, timeout=5) as http:
        for _ in range(5):
            assert (await http.get("/v1/health")).status_code == 200

    assert await _closed_by_server(slow_reader) == b""
    assert await _closed_by_server(idle_reader) == b""
    answer = await _closed_by_server(stalled_reader)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b'"error": "request_timeout"' in answer
    assert time.monotonic() - started < CUT_OFF_WITHIN_S
    trickling.cancel()
    for writer in (slow_writer, idle_writer, stalled_writer):
        writer.close()

    # A client that is merely a little slow (well within the limits) is served.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for part in (b"GET /v1/health HTTP/1.1\r\n", b"Host: vigil\r\n", b"Connection: close\r\n\r\n"):
        writer.write(part)
        await asyncio.sleep(HEADER_TIMEOUT_S / 5)
    assert (await _closed_by_server(reader)).startswith(b"HTTP/1.1 200")
    writer.close()


async def test_a_body_over_the_limit_without_a_length_is_413_not_400(server: ServerProcess) -> None:
    async def chunked() -> AsyncIterator[bytes]:
        yield b'{"username": "'
        for _ in range(10):
            yield b"a" * 500

    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        json_type = {"Content-Type": "application/json"}
        response = await http.post("/v1/accounts", content=chunked(), headers=json_type)
        assert response.status_code == 413, response.text
        assert response.json()["error"] == "too_large"
        assert (await http.get("/v1/health")).status_code == 200

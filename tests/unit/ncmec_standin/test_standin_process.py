"""`vigil cybertip stand-in` as a real process on a free loopback port answers `/status`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_stand_in_command_serves_status() -> None:
    port = _free_port()
    env = {**os.environ, "VIGIL_CYBERTIPLINE_USERNAME": "rehearsal", "VIGIL_CYBERTIPLINE_PASSWORD": "pw"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vigil",
            "cybertip",
            "stand-in",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.communicate()
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/status", auth=("rehearsal", "pw"), timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the stand-in did not start listening within 30 s"
                time.sleep(0.1)
        assert response.status_code == 200
        assert "<responseCode>0</responseCode>" in response.text
        assert "Remote User : rehearsal, Remote Ip : 127.0.0.1" in response.text
        assert response.headers["Request-ID"]
        refused = httpx.get(f"http://127.0.0.1:{port}/status", auth=("rehearsal", "nope"), timeout=2)
        assert refused.status_code == 401
        assert "<responseCode>2000</responseCode>" in refused.text
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

"""A redis-server of a test's own on a free port (not the shared one), which the test stops and restarts."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from live_server import free_port


@dataclass
class PrivateRedis:
    """A redis-server of the test's own on a free port (not the shared one), to stop and restart."""

    directory: Path
    port: int = field(default_factory=free_port)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no"]  # nothing on disk: a restart starts empty
        self.processes.append(subprocess.Popen(command, cwd=self.directory, stdout=subprocess.DEVNULL))
        deadline = time.monotonic() + 60  # generous for a busy machine; a healthy start is immediate
        while time.monotonic() < deadline:
            try:
                if redis.Redis(port=self.port, socket_connect_timeout=0.2).ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture(name="private_redis")
def private_redis_fixture(tmp_path: Path) -> Iterator[PrivateRedis]:
    """Import this into a test module to use the `private_redis` fixture there."""
    if shutil.which("redis-server") is None:
        if os.environ.get("VIGIL_REQUIRE_POSTGRES") == "1":
            pytest.fail("CI requires redis-server on PATH")
        pytest.skip("redis-server is not installed")
    redis = PrivateRedis(tmp_path)
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()

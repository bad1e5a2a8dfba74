"""A local server that speaks the S3 wire format (`moto_server`), started as a process on a free port,
for the S3 blob backend tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from live_server import free_port

__all__ = ["S3_ACCESS_KEY", "S3_SECRET_KEY", "create_bucket", "s3_server"]

S3_ACCESS_KEY = "vigil-test-access"
S3_SECRET_KEY = "vigil-test-secret"


@contextmanager
def s3_server(log_dir: Path, timeout_s: float = 60) -> Iterator[str]:
    """Yields the endpoint URL of a running `moto_server`; stops it on exit."""
    port = free_port()
    executable = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / "moto.log", "wb") as log:
        process = subprocess.Popen([executable, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            assert process.poll() is None, (log_dir / "moto.log").read_text()
            try:
                httpx.get(endpoint, timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "moto_server did not start"
                time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def create_bucket(endpoint: str) -> str:
    import boto3

    bucket = f"vigil-blobs-{uuid.uuid4().hex[:8]}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_ACCESS_KEY,
        aws_secret_access_key=S3_SECRET_KEY,
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=bucket)
    return bucket

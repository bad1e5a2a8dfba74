"""Relay benchmark: alice sends N ~300-byte envelopes to bob with concurrency C through a real
`vigil serve` process; bob receives over the WebSocket and acks. Prints one JSON line.

Baseline in the same run: GET /v1/health at the same concurrency (the HTTP stack with no work), so
`vs_health` says what share of the bare request rate a full send (auth, device check, franking tag,
queue write in one transaction, wake-up) keeps. `--olm` encrypts and decrypts every message for real.

    python benchmarks/relay.py -n 5000 -c 16 --db sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import websockets

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from live_server import ServerProcess, create_postgres_database, drop_postgres_database
from rawhttp import Connection
from server_limits import BENCHMARK_LIMITS

from vigil.client.client import Client
from vigil.client.engine import PeerDevice
from vigil.protocol.wire import Delivery, MessageKind, SendRequest


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {k: float("nan") for k in ("p50", "p90", "p99", "max", "mean")}
    ordered = sorted(values)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 3)

    return {
        "p50": pct(0.5),
        "p90": pct(0.9),
        "p99": pct(0.99),
        "max": round(ordered[-1], 3),
        "mean": round(statistics.fmean(ordered), 3),
    }


def process_cpu_seconds(pid: int, *, children: bool = True) -> float:
    """CPU seconds of the process and (by default) its running children (uvicorn's worker processes)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    if not children:
        return total
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split() if (task / "children").exists() else []
        total += sum(process_cpu_seconds(int(child)) for child in children)
    return total


async def _health_rate(port: int, concurrency: int, seconds: float = 2.0) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        connection = await Connection.open("127.0.0.1", port)
        while time.perf_counter() < deadline:
            assert (await connection.request("GET", "/v1/health")).status == 200
            done += 1
        await connection.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / (time.perf_counter() - start)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="vigil-relay-"))
    database = None
    if args.db == "postgres":
        os.environ.setdefault("VIGIL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
        database, url = create_postgres_database()
    else:
        url = f"sqlite+aiosqlite:///{work / 'server' / 'vigil.db'}"
    env = {"VIGIL_FETCH_BATCH": "500", **BENCHMARK_LIMITS}
    if args.workers > 1:
        env["VIGIL_REDIS_URL"] = args.redis
    server = ServerProcess(
        data_dir=work / "server",
        database_url=url,
        env_extra=env,
        extra_args=["--workers", str(args.workers)],
        log_level="warning",
    )
    server.start()
    assert server.process is not None
    try:
        born = dt.date(1990, 1, 1)
        alice = await Client.register(
            server.url, f"alice_{secrets.token_hex(3)}", born, work / "a.db", "bench passphrase"
        )
        bob = await Client.register(
            server.url, f"bob_{secrets.token_hex(3)}", born, work / "b.db", "bench passphrase"
        )
        await alice.send_text(bob.username, "hello")  # establishes the Olm sessions both ways
        await bob.fetch()
        await bob.send_text(alice.username, "hi")
        await alice.fetch()
        bob_device = PeerDevice(bob.username, bob.device_id, "", "")
        known = bob.core.known_devices(alice.username)
        alice_device = next(d for d in known if d.device_id == alice.device_id)
        health = await _health_rate(server.port, args.c)

        total = args.warmup + args.n
        sent_at: dict[str, float] = {}
        delivered_at: dict[str, float] = {}
        rtts: list[float] = []
        all_delivered = asyncio.Event()
        opaque = base64.b64encode(secrets.token_bytes(args.payload_bytes)).decode()
        decrypt_failures = 0

        def request(i: int) -> SendRequest:
            if args.olm:
                payload = alice.engine.build_payload(
                    bob.username, MessageKind.TEXT, i, body="x" * max(1, args.payload_bytes - 250)
                )
                return alice.engine.encrypt(payload, [bob_device], [])[0]
            return SendRequest(
                id=str(uuid.uuid4()),
                to=bob.username,
                kind=MessageKind.TEXT,
                commitment=base64.b64encode(secrets.token_bytes(32)).decode(),
                ciphertexts=[{"device_id": bob.device_id, "type": 1, "body": opaque}],
            )  # type: ignore[list-item]

        async def receiver() -> None:
            nonlocal decrypt_failures
            ws_url = server.url.replace("http", "ws") + "/v1/stream"
            headers = {"Authorization": f"Bearer {bob.store.get_secret('credential')}"}
            async with websockets.connect(ws_url, additional_headers=headers, max_size=2**26) as socket:
                async for raw in socket:
                    frame = json.loads(raw)
                    now = time.perf_counter()
                    ids = []
                    for item in frame.get("messages", []):
                        delivery = Delivery.model_validate(item)
                        if args.olm:
                            try:
                                bob.engine.accept(
                                    bob.engine.open(delivery, alice_device, bob.store.pickle_key)
                                )
                            except Exception:
                                decrypt_failures += 1
                        delivered_at.setdefault(delivery.message_id, time.perf_counter() if args.olm else now)
                        ids.append(delivery.delivery_id)
                    await socket.send(json.dumps({"type": "ack", "delivery_ids": ids}))
                    if len(delivered_at) >= total:
                        all_delivered.set()
                        return

        listener = asyncio.create_task(receiver())
        await asyncio.sleep(0.3)
        headers = {
            "Authorization": f"Bearer {alice.store.get_secret('credential')}",
            "Content-Type": "application/json",
        }
        counter = iter(range(total))
        cpu_server_0, cpu_self_0 = (
            process_cpu_seconds(server.process.pid),
            process_cpu_seconds(os.getpid(), children=False),
        )

        async def sender() -> None:
            connection = await Connection.open("127.0.0.1", server.port)
            for i in counter:
                body = request(i)
                start = time.perf_counter()
                sent_at[body.id] = start
                response = await connection.request(
                    "POST", "/v1/messages", body.model_dump_json().encode(), headers
                )
                if response.status != 202:
                    raise RuntimeError(f"send failed: {response.status} {response.body[:200]!r}")
                if i >= args.warmup:
                    rtts.append((time.perf_counter() - start) * 1000)
            await connection.close()

        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(args.c)))
        elapsed = time.perf_counter() - started
        try:
            await asyncio.wait_for(all_delivered.wait(), timeout=30)
        except TimeoutError:
            listener.cancel()
        wall = time.perf_counter() - started
        cpu_server_s = process_cpu_seconds(server.process.pid) - cpu_server_0
        cpu_server = cpu_server_s / wall * 100
        cpu_client = (process_cpu_seconds(os.getpid(), children=False) - cpu_self_0) / wall * 100
        measured = [m for m in sent_at if m in delivered_at]
        delivery = [(delivered_at[m] - sent_at[m]) * 1000 for m in measured][args.warmup :]
        sends_per_s = total / elapsed
        await alice.close()
        await bob.close()
        return {
            "n": args.n,
            "c": args.c,
            "payload_bytes": args.payload_bytes,
            "db": args.db,
            "olm": args.olm,
            "workers": args.workers,
            "sends_per_s": round(sends_per_s, 1),
            "send_rtt_ms": _stats(rtts),
            "delivered": len(delivered_at),
            "missing": total - len(delivered_at),
            "decrypt_failures": decrypt_failures,
            "delivery_ms": _stats(delivery),
            "cpu_pct": {"server": round(cpu_server, 1), "bench_clients": round(cpu_client, 1)},
            # Server process CPU (all workers) per relayed message: send, push and ack together. The
            # figure that survives a busy machine, unlike the rates.
            "server_cpu_us_per_message": round(cpu_server_s / total * 1e6, 1),
            "baseline": {"health_req_per_s": round(health, 1), "vs_health": round(sends_per_s / health, 3)},
        }
    finally:
        server.stop()
        if database is not None:
            drop_postgres_database(database)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=5000, help="measured sends")
    parser.add_argument("-c", type=int, default=16, help="concurrent senders")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--payload-bytes", type=int, default=300)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--olm", action="store_true", help="real Olm encryption and decryption on both ends")
    parser.add_argument(
        "--workers", type=int, default=1, help="server worker processes (uses Redis when > 1)"
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print(json.dumps(result))
    sys.exit(0 if result["missing"] == 0 and result["decrypt_failures"] == 0 else 1)


if __name__ == "__main__":
    main()

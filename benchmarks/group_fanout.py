"""Group send + fan-out: one sender posts real Megolm-encrypted group messages to groups of 5, 50 and 500
member devices through a real `vigil serve` process; every member device receives over its own WebSocket
and acks. Prints one JSON line.

Per size: `msgs_per_s` (group sends accepted per second, sender side, `-c` in flight), `deliveries_per_s`
(queue entries delivered and acked per second, all devices), `delivery_ms` (send start -> arrival on each
device, every (message, device) pair) and the send round trip. Sample receivers decrypt every message for
real (Megolm + franking commitment); all the others only ack. The room key reaches members out of band
here: key sharing is a once-per-session cost, not per message (see `vigil.client.groups`).

Baseline in the same run: raw vodozemac Megolm encrypt and decrypt of the same payload (as
`benchmarks/megolm_raw.py`), i.e. the cryptographic floor of one group message.

    .venv/bin/python benchmarks/group_fanout.py --sizes 5 50 500 [--db postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import multiprocessing
import os
import queue
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
from megolm_raw import _run_once as megolm_raw_once
from rawhttp import Connection
from relay import process_cpu_seconds
from server_limits import BENCHMARK_LIMITS

from vigil.protocol.encoding import b64decode, b64encode
from vigil.protocol.franking import commit, new_franking_key, verify_commitment
from vigil.protocol.group_wire import (
    GroupSendRequest,
    group_conversation,
    pack_group_ciphertext,
    unpack_group_ciphertext,
)
from vigil.protocol.megolm import GroupKeyKind, GroupSessionKey, InboundGroupSession, OutboundGroupSession
from vigil.protocol.olm import DeviceAccount
from vigil.protocol.wire import Delivery, InnerPayload, MessageKind, RegisterAccountRequest

DECRYPTING_RECEIVERS = 3
# How long a size waits for its last delivery once every send was answered.
WAIT_S = 120.0


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {k: float("nan") for k in ("p50", "p90", "p99", "max", "mean")}
    ordered = sorted(values)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2)

    return {
        "p50": pct(0.5),
        "p90": pct(0.9),
        "p99": pct(0.99),
        "max": round(ordered[-1], 2),
        "mean": round(statistics.fmean(ordered), 2),
    }


async def _register(port: int, count: int, prefix: str) -> list[dict[str, str]]:
    """Accounts with one device each, registered over raw HTTP (no client store: nothing to persist)."""
    accounts: list[dict[str, str]] = []
    names = iter(range(count))

    async def worker() -> None:
        connection = await Connection.open("127.0.0.1", port)
        for i in names:
            body = (
                RegisterAccountRequest(
                    username=f"{prefix}{i}",
                    birth_date=dt.date(1990, 1, 1),
                    device=DeviceAccount().device_keys(),
                )
                .model_dump_json()
                .encode()
            )
            response = await connection.request(
                "POST", "/v1/accounts", body, {"Content-Type": "application/json"}
            )
            if response.status != 201 and response.status != 200:
                raise RuntimeError(f"register failed: {response.status} {response.body[:200]!r}")
            accounts.append(json.loads(response.body))
        await connection.close()

    await asyncio.gather(*(worker() for _ in range(8)))
    return accounts


def _collect(finished: Any, stop: Any, count: int, wait_s: float) -> list[dict[str, Any]]:
    """The receiver processes' results: each reports once all its devices got everything; those still
    waiting when `wait_s` ran out are told to stop and report what they got."""
    deadline = time.monotonic() + wait_s
    results: list[dict[str, Any]] = []
    while len(results) < count:
        try:
            results.append(finished.get(True, max(0.01, deadline - time.monotonic())))
        except queue.Empty:
            stop.set()
            deadline = time.monotonic() + 30
    return results


def _receiver_process(
    ws_url: str,
    members: list[dict[str, str]],
    decrypting: int,
    key: tuple[str, str],
    expected: int,
    ready: Any,
    finished: Any,
    stop: Any,
) -> None:
    """One receiver process: a WebSocket per member device, acking every frame; the first `decrypting`
    devices decrypt and verify each message for real. Reports when every device has `expected`
    distinct deliveries, or when told to stop."""
    result = asyncio.run(_receive(ws_url, members, decrypting, key, expected, ready, stop))
    finished.put(result)


async def _receive(
    ws_url: str,
    members: list[dict[str, str]],
    decrypting: int,
    key: tuple[str, str],
    expected: int,
    ready: Any,
    stop: Any,
) -> dict[str, Any]:
    session_key = GroupSessionKey(GroupKeyKind(key[0]), key[1])
    arrivals: list[tuple[str, float]] = []
    decrypt_s: list[float] = []
    counts = {"received": 0, "failures": 0, "complete": 0, "frames": 0}
    all_complete = asyncio.Event()

    async def receiver(index: int, socket: Any) -> None:
        seen: set[int] = set()
        inbound = InboundGroupSession.from_key(session_key) if index < decrypting else None
        async for raw in socket:
            now = time.monotonic()
            counts["frames"] += 1
            ids = []
            for item in json.loads(raw).get("messages", []):
                if inbound is not None:
                    delivery = Delivery.model_validate(item)
                    started = time.perf_counter()
                    try:
                        ciphertext = unpack_group_ciphertext(b64decode(delivery.body))
                        payload = InnerPayload.model_validate_json(inbound.decrypt(ciphertext).plaintext)
                        verify_commitment(
                            b64decode(payload.franking_key),
                            payload.franked_bytes(),
                            b64decode(delivery.commitment),
                        )
                    except Exception:
                        counts["failures"] += 1
                    decrypt_s.append(time.perf_counter() - started)
                if item["delivery_id"] not in seen:  # at-least-once: a redelivered entry counts once
                    arrivals.append((item["message_id"], now))
                ids.append(item["delivery_id"])
            await socket.send(json.dumps({"type": "ack", "delivery_ids": ids}))
            fresh = set(ids) - seen
            seen.update(fresh)
            counts["received"] += len(fresh)
            if fresh and len(seen) >= expected and len(seen) - len(fresh) < expected:
                counts["complete"] += 1
                if counts["complete"] == len(members):
                    all_complete.set()

    async def connect(member: dict[str, str]) -> Any:
        return await websockets.connect(
            ws_url, additional_headers={"Authorization": f"Bearer {member['credential']}"}, max_size=2**26
        )

    sockets = []
    for start in range(0, len(members), 50):
        sockets += await asyncio.gather(*(connect(m) for m in members[start : start + 50]))
    tasks = [asyncio.create_task(receiver(i, s)) for i, s in enumerate(sockets)]
    ready.put(len(sockets))
    while not all_complete.is_set() and not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_complete.wait(), 0.2)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.gather(*(s.close() for s in sockets), return_exceptions=True)
    return {"arrivals": arrivals, "decrypt_s": decrypt_s, **counts}


async def _one_size(
    server: ServerProcess, size: int, n: int, concurrency: int, payload_bytes: int, receiver_procs: int
) -> dict[str, Any]:
    prefix = f"g{size}_{secrets.token_hex(2)}_"
    sender, *members = await _register(server.port, size + 1, prefix)
    headers = {"Authorization": f"Bearer {sender['credential']}", "Content-Type": "application/json"}
    control = await Connection.open("127.0.0.1", server.port)
    created = await control.request(
        "POST", "/v1/groups", json.dumps({"members": [m["username"] for m in members]}).encode(), headers
    )
    assert created.status == 201, created.body
    group_id = json.loads(created.body)["group_id"]
    devices = [m["device_id"] for m in members]
    outbound = OutboundGroupSession()
    session_key = outbound.session_key()
    arrivals: dict[str, list[float]] = {}
    sent_at: dict[str, float] = {}
    total = n * size
    ws_url = server.url.replace("http", "ws") + "/v1/stream"
    # The receivers run in their own processes: the benchmark measures the server, not 500 sockets
    # sharing the sender's event loop.
    spawn = multiprocessing.get_context("spawn")
    ready: Any = spawn.Queue()
    finished: Any = spawn.Queue()
    stop = spawn.Event()
    slices = [members[i::receiver_procs] for i in range(receiver_procs)]
    processes = [
        spawn.Process(
            target=_receiver_process,
            args=(
                ws_url,
                chunk,
                DECRYPTING_RECEIVERS if i == 0 else 0,
                (session_key.kind.value, session_key.value),
                n,
                ready,
                finished,
                stop,
            ),
            daemon=True,
        )
        for i, chunk in enumerate(slices)
        if chunk
    ]
    for process in processes:
        process.start()
    loop = asyncio.get_running_loop()
    for _ in processes:
        await loop.run_in_executor(None, ready.get, True, 120)
    await asyncio.sleep(0.5)
    conversation = group_conversation(group_id)
    text = "x" * max(1, payload_bytes - 250)
    encrypt_s: list[float] = []
    rtts: list[float] = []
    counter = iter(range(n))

    def build(i: int) -> GroupSendRequest:
        key = new_franking_key()
        payload = InnerPayload(
            message_id=str(uuid.uuid4()),
            sender=sender["username"],
            conversation=conversation,
            sent_at_ms=i,
            kind=MessageKind.TEXT,
            body=text,
            franking_key=b64encode(key),
        )
        started = time.perf_counter()
        ciphertext = outbound.encrypt(payload.model_dump_json().encode())
        encrypt_s.append(time.perf_counter() - started)
        return GroupSendRequest(
            id=payload.message_id,
            kind=MessageKind.TEXT,
            commitment=b64encode(commit(key, payload.franked_bytes())),
            body=b64encode(pack_group_ciphertext(ciphertext)),
            devices=devices,
        )

    async def sender_task() -> None:
        connection = await Connection.open("127.0.0.1", server.port)
        for i in counter:
            request = build(i)
            body = request.model_dump_json().encode()
            start = time.monotonic()
            sent_at[request.id] = start
            response = await connection.request("POST", f"/v1/groups/{group_id}/messages", body, headers)
            if response.status != 202:
                raise RuntimeError(f"group send failed: {response.status} {response.body[:200]!r}")
            rtts.append((time.monotonic() - start) * 1000)
        await connection.close()

    assert server.process is not None
    cpu_before = process_cpu_seconds(server.process.pid)
    started = time.monotonic()
    await asyncio.gather(*(sender_task() for _ in range(concurrency)))
    send_elapsed = time.monotonic() - started
    received = failures = frames = 0
    decrypt_s: list[float] = []
    last_arrival = started
    for result in await loop.run_in_executor(None, _collect, finished, stop, len(processes), WAIT_S):
        received += result["received"]
        failures += result["failures"]
        frames += result["frames"]
        decrypt_s += result["decrypt_s"]
        for message_id, at in result["arrivals"]:
            arrivals.setdefault(message_id, []).append(at)
            last_arrival = max(last_arrival, at)
    server_cpu_s = process_cpu_seconds(server.process.pid) - cpu_before
    all_elapsed = last_arrival - started
    for process in processes:
        process.join(10)
    await control.close()
    delivery_ms = [(t - sent_at[m]) * 1000 for m, times in arrivals.items() if m in sent_at for t in times]
    return {
        "member_devices": size,
        "messages": n,
        "concurrency": concurrency,
        "msgs_per_s": round(n / send_elapsed, 1),
        "deliveries_per_s": round(received / all_elapsed, 1),
        "delivered": received,
        "missing": total - received,
        "decrypt_failures": failures,
        "send_rtt_ms": _stats(rtts),
        "delivery_ms": _stats(delivery_ms),
        # Server process CPU per (message, device) delivery: the send's share plus push and ack.
        "server_cpu_us_per_delivery": round(server_cpu_s / max(1, received) * 1e6, 1),
        # Push frames the member sockets received per delivery (several pushes coalesced in a frame: < 1).
        "frames_per_delivery": round(frames / max(1, received), 3),
        "receiver_processes": len(processes),
        "client_megolm_encrypt_us": round(statistics.median(encrypt_s) * 1e6, 1),
        "client_decrypt_and_verify_us": round(statistics.median(decrypt_s) * 1e6, 1) if decrypt_s else None,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    payload = os.urandom(args.payload_bytes)
    megolm_raw_once(200, payload)
    raw = [megolm_raw_once(2000, payload) for _ in range(3)]
    baseline = {
        "megolm_encrypt_us": round(statistics.median(e for e, _ in raw) / 2000 * 1e6, 2),
        "megolm_decrypt_us": round(statistics.median(d for _, d in raw) / 2000 * 1e6, 2),
    }
    work = Path(tempfile.mkdtemp(prefix="vigil-group-"))
    database = None
    if args.db == "postgres":
        os.environ.setdefault("VIGIL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
        database, url = create_postgres_database()
    else:
        url = f"sqlite+aiosqlite:///{work / 'server' / 'vigil.db'}"
    server = ServerProcess(
        data_dir=work / "server",
        database_url=url,
        env_extra={"VIGIL_FETCH_BATCH": "500", **BENCHMARK_LIMITS},
        log_level="warning",
    )
    server.start()
    try:
        results = []
        for size in args.sizes:
            n = args.n if args.n else max(20, min(400, 4000 // size))
            results.append(await _one_size(server, size, n, args.c, args.payload_bytes, args.receiver_procs))
        return {
            "benchmark": "group_fanout",
            "db": args.db,
            "payload_bytes": args.payload_bytes,
            "baseline_raw_vodozemac": baseline,
            "sizes": results,
        }
    finally:
        server.stop()
        if database is not None:
            drop_postgres_database(database)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 50, 500])
    parser.add_argument("-n", type=int, default=0, help="messages per size (default: 4000 / size, 20..400)")
    parser.add_argument("-c", type=int, default=4, help="group sends in flight")
    parser.add_argument("--payload-bytes", type=int, default=300)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--receiver-procs", type=int, default=2, help="processes the member devices' sockets run in"
    )
    print(json.dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()

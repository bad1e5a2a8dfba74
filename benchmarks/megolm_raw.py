"""Raw vodozemac Megolm throughput: one sender encrypting, one member decrypting, ~300-byte payloads.

This is the baseline for the group fan-out benchmark: whatever that one measures above these figures is
Vigil's own overhead (wrappers, wire models, storage, delivery). Prints one JSON line.

    .venv/bin/python benchmarks/megolm_raw.py [--messages N] [--payload BYTES] [--repeats R]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import vodozemac


def _run_once(messages: int, payload: bytes) -> tuple[float, float]:
    outbound = vodozemac.GroupSession()
    inbound = vodozemac.InboundGroupSession(outbound.session_key)
    started = time.perf_counter()
    ciphertexts = [outbound.encrypt(payload) for _ in range(messages)]
    encrypt_s = time.perf_counter() - started
    started = time.perf_counter()
    for ciphertext in ciphertexts:
        inbound.decrypt(ciphertext)
    decrypt_s = time.perf_counter() - started
    # Decrypting in order is the common case; check once that the work was real.
    assert inbound.decrypt(ciphertexts[-1]).plaintext == payload
    return encrypt_s, decrypt_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--payload", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    payload = os.urandom(args.payload)

    _run_once(min(args.messages, 200), payload)  # warm up caches and the allocator
    runs = [_run_once(args.messages, payload) for _ in range(args.repeats)]
    encrypt_us = [seconds / args.messages * 1e6 for seconds, _ in runs]
    decrypt_us = [seconds / args.messages * 1e6 for _, seconds in runs]
    encrypt_median, decrypt_median = statistics.median(encrypt_us), statistics.median(decrypt_us)
    sample = vodozemac.GroupSession().encrypt(payload)
    print(
        json.dumps(
            {
                "benchmark": "megolm_raw",
                "payload_bytes": args.payload,
                "ciphertext_bytes": len(sample.to_bytes()),
                "messages": args.messages,
                "repeats": args.repeats,
                "encrypt_us_per_op": round(encrypt_median, 2),
                "decrypt_us_per_op": round(decrypt_median, 2),
                "encrypt_msgs_per_s": round(1e6 / encrypt_median),
                "decrypt_msgs_per_s": round(1e6 / decrypt_median),
                "encrypt_us_runs": [round(value, 2) for value in encrypt_us],
                "decrypt_us_runs": [round(value, 2) for value in decrypt_us],
                "python": platform.python_version(),
                "machine": platform.machine(),
            }
        )
    )


if __name__ == "__main__":
    main()

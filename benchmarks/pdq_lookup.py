"""Lookup latency of Vigil's PDQ indexes on banks of random hashes, vs a brute-force NumPy popcount scan.

Prints one JSON line. For each bank size: build time and memory (RSS growth) of the multi-index-hashing
index, p50/p99 latency of an 8-hash (dihedral) query at threshold 31 through `MultiIndexHashIndex`, and
the same through `BruteForceIndex` (the baseline). Half the queries are planted near-duplicates (within
0..31 bits of a bank entry) so both the hit and the miss paths are timed; results are cross-checked.

    .venv/bin/python benchmarks/pdq_lookup.py                 # 100k and 1M
    .venv/bin/python benchmarks/pdq_lookup.py --with-10m      # adds 10M (about 2.5 GB RSS, ~2 min)
    .venv/bin/python benchmarks/pdq_lookup.py --sizes 50000 --queries 50
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import resource
import time

import numpy as np

from vigil.safety.hashing.index import BruteForceIndex, HashIndex, MultiIndexHashIndex
from vigil.safety.hashing.pdq import PdqHash


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _queries(bank: np.ndarray, count: int, rng: np.random.Generator) -> list[list[PdqHash]]:
    """`count` 8-hash queries; every other one has one variant planted near a bank entry."""
    out: list[list[PdqHash]] = []
    for i in range(count):
        variants = [PdqHash(rng.integers(0, 256, 32, dtype=np.uint8).tobytes()) for _ in range(8)]
        if i % 2 == 0:
            row = bank[rng.integers(len(bank))]
            value = int.from_bytes(row.tobytes(), "big")
            for bit in rng.choice(256, size=int(rng.integers(0, 32)), replace=False):
                value ^= 1 << int(bit)
            variants[int(rng.integers(8))] = PdqHash(value.to_bytes(32, "big"))
        out.append(variants)
    return out


def _time_queries(index: HashIndex, queries: list[list[PdqHash]]) -> tuple[dict[str, float], list[int]]:
    latencies: list[float] = []
    hits: list[int] = []
    for q in queries:
        start = time.perf_counter()
        result = index.query_many(q, 31)
        latencies.append(time.perf_counter() - start)
        hits.append(sum(len(r) for r in result))
    ms = np.array(latencies) * 1000
    p50, p99 = (round(float(np.percentile(ms, p)), 3) for p in (50, 99))
    return {"p50_ms": p50, "p99_ms": p99}, hits


def run(size: int, queries: int, brute_queries: int, rng: np.random.Generator) -> dict[str, object]:
    bank = rng.integers(0, 256, size=(size, 32), dtype=np.uint8)
    qs = _queries(bank, queries, rng)
    gc.collect()
    before = _rss_bytes()
    start = time.perf_counter()
    mih = MultiIndexHashIndex()
    mih.add_array(bank)
    build_s = time.perf_counter() - start
    mih_mem = _rss_bytes() - before
    mih_lat, mih_hits = _time_queries(mih, qs)

    before = _rss_bytes()
    start = time.perf_counter()
    brute = BruteForceIndex()
    brute.add_array(bank)
    brute.query(qs[0][0], 31)  # first query concatenates the pending adds: count it as build
    brute_build_s = time.perf_counter() - start
    brute_mem = _rss_bytes() - before
    brute_lat, brute_hits = _time_queries(brute, qs[:brute_queries])
    if brute_hits != mih_hits[:brute_queries]:
        raise SystemExit(f"index disagreement at size {size}")
    return {
        "bank_size": size,
        "queries": queries,
        "mih": {"build_s": round(build_s, 2), "mem_mb": round(mih_mem / 2**20), **mih_lat},
        "brute_force": {
            "build_s": round(brute_build_s, 2),
            "mem_mb": round(brute_mem / 2**20),
            "queries": brute_queries,
            **brute_lat,
        },
        "speedup_p50": round(brute_lat["p50_ms"] / mih_lat["p50_ms"], 1),
        "planted_hits": sum(1 for h in mih_hits if h),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--with-10m", action="store_true", help="also run a 10,000,000-hash bank")
    parser.add_argument("--queries", type=int, default=400, help="8-hash queries per bank (MIH)")
    parser.add_argument("--brute-queries", type=int, default=40, help="queries for the brute-force baseline")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    sizes = list(args.sizes) + ([10_000_000] if args.with_10m else [])
    rng = np.random.default_rng(args.seed)
    results = []
    for size in sizes:
        results.append(run(size, args.queries, min(args.brute_queries, args.queries), rng))
        gc.collect()
    print(
        json.dumps(
            {
                "benchmark": "pdq_lookup",
                "threshold": 31,
                "query": "8 dihedral hashes per lookup",
                "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()

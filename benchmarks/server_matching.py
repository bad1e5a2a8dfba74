"""Server-side PDQ matching (`vigil.server.services.hashlist.match_image`'s path) per lookup, before and
after the cached index, in one run on a real database.

A bank of `--size` random hashes is imported into a fresh SQLite file (or `--database-url`). Timed per
lookup (8 hashes: half carry one hash planted 0..31 bits from an entry, half are random), CPU time of this
process (`time.process_time`, what one core spends; the machine is shared):

- before: what `match_image` did on every call: load the enabled banks from the database and scan them
  (`Matcher(..., index_factory=BruteForceIndex)`);
- after: `bank_matcher(ctx)` (one small revision query, then the cached `MultiIndexHashIndex`).

Also: the first call's build (and save), and a restarted context's first call (loads the saved index,
memory-mapped, without rebuilding). Every lookup's result must equal the brute-force one (exit 1 otherwise).

    .venv/bin/python benchmarks/server_matching.py --size 100000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vigil.safety.hashing.banks import Matcher
from vigil.safety.hashing.index import BruteForceIndex
from vigil.safety.hashing.pdq import PdqHash
from vigil.server.context import ServerContext
from vigil.server.hashindex import MatcherSource
from vigil.server.services import hashlist
from vigil.server.settings import Settings


def _queries(rng: np.random.Generator, bank: np.ndarray, count: int) -> list[list[PdqHash]]:
    queries = []
    for i in range(count):
        hashes = [PdqHash(rng.integers(0, 256, 32, dtype=np.uint8).tobytes()) for _ in range(8)]
        if i % 2 == 0:
            bits = np.unpackbits(bank[(i * 7919) % len(bank)].copy())
            bits[rng.choice(256, size=(i // 2) % 32, replace=False)] ^= 1
            hashes[i % 8] = PdqHash(np.packbits(bits).tobytes())
        queries.append(hashes)
    return queries


def _pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)) * 1000, 2)


async def run(
    size: int, lookups: int, brute_lookups: int, database_url: str | None, data_dir: Path
) -> dict[str, object]:
    rng = np.random.default_rng(2026)
    bank = np.unique(rng.integers(0, 256, (size, 32), dtype=np.uint8), axis=0)
    settings = Settings(data_dir=data_dir, database_url=database_url)
    queries = _queries(rng, bank, lookups)
    async with ServerContext.open(settings) as ctx:
        await hashlist.create_bank(ctx, "bench")
        started = time.perf_counter()
        await hashlist.import_entries(ctx, "bench", "".join(f"{r.tobytes().hex()}\n" for r in bank), "csv")
        import_s = time.perf_counter() - started

        cpu, wall = time.process_time(), time.perf_counter()
        await hashlist.bank_matcher(ctx)
        build = {"cpu_s": round(time.process_time() - cpu, 2), "wall_s": round(time.perf_counter() - wall, 2)}
        assert ctx.bank_matchers.last_source is MatcherSource.BUILT

        before: list[float] = []
        expected = []
        for query in queries[:brute_lookups]:
            cpu = time.process_time()
            expected.append(
                Matcher(await hashlist.enabled_banks(ctx), index_factory=BruteForceIndex).match_hashes(query)
            )
            before.append(time.process_time() - cpu)
        after: list[float] = []
        results = []
        for query in queries:
            cpu = time.process_time()
            results.append((await hashlist.bank_matcher(ctx)).match_hashes(query))
            after.append(time.process_time() - cpu)
        if results[:brute_lookups] != expected:
            print("MISMATCH between the cached index and brute force", file=sys.stderr)
            sys.exit(1)
        found = sum(r.is_match for r in results[0::2])

    async with ServerContext.open(settings) as ctx:
        cpu, wall = time.process_time(), time.perf_counter()
        matcher = await hashlist.bank_matcher(ctx)
        load = {"cpu_s": round(time.process_time() - cpu, 2), "wall_s": round(time.perf_counter() - wall, 2)}
        assert ctx.bank_matchers.last_source is MatcherSource.LOADED
        if [matcher.match_hashes(q) for q in queries[:brute_lookups]] != expected:
            print("MISMATCH after loading the saved index", file=sys.stderr)
            sys.exit(1)
    return {
        "benchmark": "server_matching",
        "bank": len(bank),
        "import_wall_s": round(import_s, 1),
        "first_call_build": build,
        "restart_first_call_load": load,
        "before_brute_per_call_cpu_ms_p50_p99": [_pct(before, 50), _pct(before, 99)],
        "after_cached_index_cpu_ms_p50_p99": [_pct(after, 50), _pct(after, 99)],
        "speedup_p50": round(float(np.median(before)) / float(np.median(after)), 1),
        "brute_lookups": len(before),
        "lookups": len(after),
        "planted_found": f"{found}/{len(results[0::2])}",
        "identical_to_brute": True,
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=400)
    parser.add_argument("--brute-lookups", type=int, default=20)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vigil-server-matching-") as tmp:
        print(
            json.dumps(
                asyncio.run(run(args.size, args.lookups, args.brute_lookups, args.database_url, Path(tmp)))
            )
        )


if __name__ == "__main__":
    main()

"""Lookup latency of Vigil's PDQ index on banks of random hashes, against brute force and the previous index.

One lookup = 8 hashes (an image's orientations) at threshold 31. For each bank size: build time and peak
memory of `MultiIndexHashIndex` (built in a child process, saved to disk), then in this process: the
index loaded from disk memory-mapped (no rebuild), per-lookup latency percentiles (wall and CPU time: the
machine is shared, CPU time is what one core spends), resident memory after the lookups, and the same
lookups through the baselines measured in the same run:

- brute force (`BruteForceIndex`, NumPy XOR + popcount over every hash) on a sample of the lookups;
- the previous index, faiss `IndexBinaryMultiHash` with 16 chunks of 16 bits (`--faiss`; at 10M it costs
  about 2.5 GB and minutes, so it is opt-in).

Half the lookups carry one hash planted at distance 0..31 (cycled) from a bank entry, the rest are random
(non-matches). Every lookup answered by a baseline must equal the index's answer exactly: the script exits
non-zero on any difference. Built banks are kept in `--cache-dir` and reused by later runs.

    .venv/bin/python benchmarks/pdq_lookup.py                                   # 100k and 1M
    .venv/bin/python benchmarks/pdq_lookup.py --sizes 10000000 --cache-dir /tmp/vigil-pdq-banks
    .venv/bin/python benchmarks/pdq_lookup.py --sizes 1000000 --faiss
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from vigil.safety.hashing.index import BruteForceIndex, IndexMatch, MultiIndexHashIndex
from vigil.safety.hashing.pdq import PdqHash
from vigil.server.hashindex import load_index, save_index

THRESHOLD = 31


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _bank(size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(size, 32), dtype=np.uint8)


def _build(size: int, seed: int, directory: Path) -> None:
    """Child process: build the index for the bank and save it; prints build time and peak RSS."""
    bank = _bank(size, seed)
    start = time.perf_counter()
    index = MultiIndexHashIndex()
    index.add_array(bank)
    chunks = index.chunks  # builds the tables
    build_s = time.perf_counter() - start
    save_index(index, directory)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"build_s": round(build_s, 2), "peak_rss_mb": round(peak_mb), "chunks": chunks}))


def _lookups(bank: np.ndarray, count: int, rng: np.random.Generator) -> list[list[PdqHash]]:
    out: list[list[PdqHash]] = []
    for i in range(count):
        variants = [PdqHash(rng.integers(0, 256, 32, dtype=np.uint8).tobytes()) for _ in range(8)]
        if i % 2 == 0:
            value = int.from_bytes(bank[rng.integers(len(bank))].tobytes(), "big")
            for bit in rng.choice(256, size=(i // 2) % (THRESHOLD + 1), replace=False):
                value ^= 1 << int(bit)
            variants[int(rng.integers(8))] = PdqHash(value.to_bytes(32, "big"))
        out.append(variants)
    return out


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1000
    return {f"p{p}_ms": round(float(np.percentile(ms, p)), 3) for p in (50, 90, 99)}


def _time(
    query: object, lookups: list[list[PdqHash]]
) -> tuple[dict[str, object], list[list[list[IndexMatch]]]]:
    wall: list[float] = []
    cpu: list[float] = []
    answers = []
    for lookup in lookups:
        w, c = time.perf_counter(), time.process_time()
        answers.append(query(lookup))  # type: ignore[operator]
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return {"wall": _percentiles(wall), "cpu": _percentiles(cpu), "lookups": len(lookups)}, answers


def _brute_force(
    bank: np.ndarray, sample: list[list[PdqHash]]
) -> tuple[dict[str, object], list[list[list[IndexMatch]]]]:
    brute = BruteForceIndex()
    brute.add_array(bank)
    return _time(lambda q: brute.query_many(q, THRESHOLD), sample)


class _Faiss:
    """The index Vigil used before: faiss IndexBinaryMultiHash, 16 x 16 bits, nflip = t // 16."""

    def __init__(self, bank: np.ndarray) -> None:
        import faiss

        self._index = faiss.IndexBinaryMultiHash(256, 16, 16)
        self._index.add(bank)
        self._index.nflip = THRESHOLD // 16

    def query_many(self, lookup: list[PdqHash], threshold: int) -> list[list[IndexMatch]]:
        packed = np.frombuffer(b"".join(h.digest for h in lookup), dtype=np.uint8).reshape(-1, 32)
        limits, distances, ids = self._index.range_search(packed, threshold + 1)
        out = []
        for i in range(len(lookup)):
            lo, hi = int(limits[i]), int(limits[i + 1])
            out.append(
                sorted(IndexMatch(int(j), int(d)) for j, d in zip(ids[lo:hi], distances[lo:hi], strict=True))
            )
        return [sorted(r, key=lambda m: (m.distance, m.id)) for r in out]


def run(size: int, args: argparse.Namespace) -> dict[str, object]:
    directory = Path(args.cache_dir) / f"random-{size}-seed{args.seed}"
    build: dict[str, object] = {"reused": True}
    if not (directory / "layout.npy").exists():
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--build-only",
                str(size),
                "--seed",
                str(args.seed),
                "--cache-dir",
                args.cache_dir,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        build = json.loads(done.stdout.strip().splitlines()[-1])
    rng = np.random.default_rng(args.seed + 1)
    before = _rss_mb()
    start = time.perf_counter()
    index = load_index(directory)
    load_s = time.perf_counter() - start
    bank = np.asarray(index.arrays()["hashes"])
    lookups = _lookups(bank, args.lookups, rng)
    index.query_many(lookups[0], THRESHOLD)  # first touch of the mapped tables
    mih, answers = _time(lambda q: index.query_many(q, THRESHOLD), lookups)
    mih["rss_after_lookups_mb"] = round(_rss_mb() - before)
    result: dict[str, object] = {
        "bank_size": size,
        "build": build,
        "load_s": round(load_s, 3),
        "disk_mb": round(sum(f.stat().st_size for f in directory.iterdir()) / 2**20),
        "mih": mih,
        "planted_lookups_matched": sum(1 for a in answers[::2] if any(a)),
    }
    sample = lookups[: args.brute_lookups]
    brute_stats, brute_answers = _brute_force(bank, sample)
    if brute_answers != answers[: len(sample)]:
        raise SystemExit(f"index and brute force disagree at size {size}")
    result["brute_force"] = brute_stats
    result["speedup_vs_brute_p50_cpu"] = round(
        brute_stats["cpu"]["p50_ms"] / max(mih["cpu"]["p50_ms"], 1e-3),
        1,  # type: ignore[index]
    )
    if args.faiss:
        start = time.perf_counter()
        previous = _Faiss(bank)
        faiss_build = time.perf_counter() - start
        faiss_stats, faiss_answers = _time(
            lambda q: previous.query_many(q, THRESHOLD), lookups[: args.faiss_lookups]
        )
        if faiss_answers != answers[: len(faiss_answers)]:
            raise SystemExit(f"index and faiss disagree at size {size}")
        result["previous_faiss_mih"] = {"build_s": round(faiss_build, 2), **faiss_stats}
        result["speedup_vs_previous_p50_cpu"] = round(
            faiss_stats["cpu"]["p50_ms"] / max(mih["cpu"]["p50_ms"], 1e-3),
            1,  # type: ignore[index]
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--lookups", type=int, default=400, help="8-hash lookups through the index")
    parser.add_argument(
        "--brute-lookups", type=int, default=20, help="of those, how many brute force repeats"
    )
    parser.add_argument("--faiss", action="store_true", help="also time the previous faiss index")
    parser.add_argument("--faiss-lookups", type=int, default=100)
    parser.add_argument("--cache-dir", default="/tmp/vigil-pdq-banks")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--build-only", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_only:
        _build(args.build_only, args.seed, Path(args.cache_dir) / f"random-{args.build_only}-seed{args.seed}")
        return
    results = [run(size, args) for size in args.sizes]
    print(
        json.dumps(
            {
                "benchmark": "pdq_lookup",
                "threshold": THRESHOLD,
                "lookup": "8 hashes per lookup",
                "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()

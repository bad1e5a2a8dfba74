"""Exactness of the matching indexes against brute force, and the reference needle/haystack workload."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vigil.errors import ValidationError
from vigil.safety.hashing.index import BruteForceIndex, HashIndex, IndexMatch, MultiIndexHashIndex
from vigil.safety.hashing.pdq import MATCH_DISTANCE_THRESHOLD, PdqHash

# Set bits of every byte value, counted by Python rather than NumPy's popcount (which BruteForceIndex uses).
_BYTE_POPCOUNT = np.array([bin(value).count("1") for value in range(256)], dtype=np.int64)


def _brute_force(packed: np.ndarray, query: PdqHash, threshold: int) -> list[IndexMatch]:
    """Exact, and independent of both indexes: byte-wise XOR and a popcount table (no faiss, no uint64)."""
    distances = _BYTE_POPCOUNT[packed ^ np.frombuffer(query.digest, dtype=np.uint8)].sum(axis=1)
    hits = np.flatnonzero(distances <= threshold)
    return sorted((IndexMatch(int(i), int(distances[i])) for i in hits), key=lambda m: (m.distance, m.id))


def _flip_bits(digest: bytes, positions: np.ndarray) -> PdqHash:
    value = int.from_bytes(digest, "big")
    for p in positions:
        value ^= 1 << int(p)
    return PdqHash(value.to_bytes(32, "big"))


Planted = tuple[np.ndarray, list[PdqHash], list[list[IndexMatch]]]


@pytest.fixture(scope="module")
def planted() -> Planted:
    """20k random hashes, and queries planted at every distance 0..40 from some of them.

    Random 256-bit hashes are ~128 bits apart, so without planting no query would hit anything. The
    distances straddle the threshold (31), including the pigeonhole edge where the differing bits are
    spread so each 16-bit chunk but one has exactly 2 flips.
    """
    rng = np.random.default_rng(20240517)
    packed = rng.integers(0, 256, size=(20_000, 32), dtype=np.uint8)
    queries: list[PdqHash] = []
    for distance in range(41):
        for _ in range(3):
            target = packed[rng.integers(len(packed))].tobytes()
            queries.append(_flip_bits(target, rng.choice(256, size=distance, replace=False)))
    # Worst case for multi-index hashing at t = 31: 15 chunks with 2 flips and one with 1.
    spread = np.array([16 * c + b for c in range(16) for b in range(2)])[:31]
    queries.append(_flip_bits(packed[7].tobytes(), spread))
    # Also some duplicates of a stored hash, which must all be returned.
    packed[100] = packed[200] = packed[300]
    queries.append(PdqHash(packed[300].tobytes()))
    # Computed once at the largest threshold tested, filtered per test.
    expected = [_brute_force(packed, q, 40) for q in queries]
    return packed, queries, expected


@pytest.mark.parametrize("factory", [BruteForceIndex, MultiIndexHashIndex], ids=["brute", "mih"])
@pytest.mark.parametrize("threshold", [0, 10, MATCH_DISTANCE_THRESHOLD, 40])
def test_index_is_exact(factory: type[HashIndex], threshold: int, planted: Planted) -> None:
    packed, queries, expected_at_40 = planted
    haystack = [PdqHash(row.tobytes()) for row in packed]
    index = factory()
    assert index.add_array(packed[:5000]) == range(5000)
    assert index.add(haystack[5000:]) == range(5000, 20_000)
    assert len(index) == 20_000
    hits = 0
    results = index.query_many(queries, threshold)
    for query, got, candidates in zip(queries, results, expected_at_40, strict=True):
        expected = [m for m in candidates if m.distance <= threshold]
        assert got == expected
        assert index.query(query, threshold) == expected
        hits += len(expected)
    assert hits > 0


def test_oracle_agrees_with_python_int_distances(planted: Planted) -> None:
    packed, queries, _ = planted
    haystack = [PdqHash(row.tobytes()) for row in packed[:2000]]
    for query in (queries[0], queries[60], queries[-2]):
        expected = [IndexMatch(i, query.distance(h)) for i, h in enumerate(haystack)]
        assert _brute_force(packed[:2000], query, 256) == sorted(expected, key=lambda m: (m.distance, m.id))


def test_duplicates_are_all_returned(planted: Planted) -> None:
    packed, queries, _ = planted
    index = MultiIndexHashIndex()
    index.add_array(packed)
    assert [m.id for m in index.query(queries[-1], 0)] == [100, 200, 300]


@pytest.mark.parametrize("factory", [BruteForceIndex, MultiIndexHashIndex], ids=["brute", "mih"])
def test_empty_index_and_bad_input(factory: type[HashIndex]) -> None:
    index = factory()
    query = PdqHash(b"\x00" * 32)
    assert index.query(query, 31) == []
    assert index.query_many([], 31) == []
    with pytest.raises(ValidationError):
        index.query(query, -1)
    with pytest.raises(ValidationError):
        index.query(query, 257)
    with pytest.raises(ValidationError):
        index.add_array(np.zeros((3, 31), dtype=np.uint8))
    with pytest.raises(ValidationError):
        index.add_array(np.zeros((3, 32), dtype=np.int64))


def test_bad_chunking_is_refused() -> None:
    for chunks in (0, 3, 2):
        with pytest.raises(ValidationError):
            MultiIndexHashIndex(chunks)


def _read_hashes(path: Path) -> list[PdqHash]:
    return [PdqHash.from_hex(line.strip()) for line in path.read_text().splitlines() if line.strip()]


def test_reference_needles_in_haystack(pdq_testdata: Path) -> None:
    haystack = _read_hashes(pdq_testdata / "haystack.txt")
    needles = _read_hashes(pdq_testdata / "needles.txt")
    assert (len(haystack), len(needles)) == (1350, 100)
    index = MultiIndexHashIndex()
    index.add(haystack)
    got = {(n, m.id, m.distance) for n, hits in enumerate(index.query_many(needles, 31)) for m in hits}
    packed = np.array([list(h.digest) for h in haystack], dtype=np.uint8)
    expected = {
        (n, m.id, m.distance) for n, needle in enumerate(needles) for m in _brute_force(packed, needle, 31)
    }
    assert got == expected
    assert expected  # the workload is meant to contain matches

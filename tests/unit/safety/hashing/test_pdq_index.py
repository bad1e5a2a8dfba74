"""Exactness of the matching indexes against brute force, and the reference needle/haystack workload."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from vigil.errors import ValidationError
from vigil.safety.hashing.index import (
    BruteForceIndex,
    HashIndex,
    IndexMatch,
    MultiIndexHashIndex,
    choose_chunks,
)
from vigil.safety.hashing.pdq import MATCH_DISTANCE_THRESHOLD, PdqHash

# Set bits of every byte value, counted by Python rather than NumPy's popcount (which BruteForceIndex uses).
_BYTE_POPCOUNT = np.array([bin(value).count("1") for value in range(256)], dtype=np.int64)


def _brute_force(packed: np.ndarray, query: PdqHash, threshold: int) -> list[IndexMatch]:
    """Exact, and independent of both indexes: byte-wise XOR and a popcount table (no uint64 words)."""
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


def _mih_10m_layout() -> MultiIndexHashIndex:
    """The chunking chosen for 10M hashes (11 chunks of 23-24 bits, 2 flips at t = 31) on a small bank."""
    return MultiIndexHashIndex(chunks=11)


def _mih_32() -> MultiIndexHashIndex:
    """32 chunks of 8 bits: at t = 31 the pigeonhole radius is 0 (exact chunk equality)."""
    return MultiIndexHashIndex(chunks=32)


_EXACTNESS_CASES = [
    *(
        (factory, threshold)
        for factory in (BruteForceIndex, MultiIndexHashIndex, _mih_32)
        for threshold in (0, 10, 31, 40)
    ),
    # The 10M layout allocates its full tables (~470 MB of offsets) whatever the bank: one case only.
    (_mih_10m_layout, MATCH_DISTANCE_THRESHOLD),
]


@pytest.mark.parametrize(("factory", "threshold"), _EXACTNESS_CASES)
def test_index_is_exact(factory: Callable[[], HashIndex], threshold: int, planted: Planted) -> None:
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
    for chunks in (0, 3, 2, 9, 257):
        with pytest.raises(ValidationError):
            MultiIndexHashIndex(chunks)


def test_chunking_follows_the_bank_size() -> None:
    # About one hash per table bucket: longer chunk keys for bigger banks.
    assert choose_chunks(10_000_000) == 11
    assert choose_chunks(1_000_000) == 16
    assert choose_chunks(100) >= 16
    index = MultiIndexHashIndex()
    index.add_array(np.zeros((10, 32), dtype=np.uint8))
    assert index.chunks == choose_chunks(10)


def test_arrays_round_trip_without_rebuilding(planted: Planted) -> None:
    packed, queries, expected_at_40 = planted
    built = MultiIndexHashIndex()
    built.add_array(packed)
    arrays = built.arrays()
    loaded = MultiIndexHashIndex.from_arrays({name: array.copy() for name, array in arrays.items()})
    assert len(loaded) == len(packed) and loaded.chunks == built.chunks
    expected = [[m for m in hits if m.distance <= MATCH_DISTANCE_THRESHOLD] for hits in expected_at_40]
    assert loaded.query_many(queries, MATCH_DISTANCE_THRESHOLD) == expected
    # Appending to a loaded index rebuilds the tables over old and new hashes.
    assert loaded.add_array(packed[:1]) == range(len(packed), len(packed) + 1)
    assert [m.id for m in loaded.query(PdqHash(packed[0].tobytes()), 0)] == [0, len(packed)]


def test_inconsistent_arrays_are_refused(planted: Planted) -> None:
    packed, _, _ = planted
    index = MultiIndexHashIndex()
    index.add_array(packed[:1000])
    arrays = index.arrays()
    broken = [
        {k: v for k, v in arrays.items() if k != "ids"},
        {**arrays, "ids": arrays["ids"][:-1]},
        {**arrays, "offsets": arrays["offsets"].astype(np.int64)},
        {**arrays, "layout": np.array([99, *arrays["layout"][1:]])},
        {**arrays, "layout": np.array([1, 128, 127])},
        {**arrays, "hashes": arrays["hashes"][:-1]},
    ]
    for bad in broken:
        with pytest.raises(ValidationError):
            MultiIndexHashIndex.from_arrays(bad)


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

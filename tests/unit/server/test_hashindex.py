"""A built PDQ index saved to disk and loaded memory-mapped, without rebuilding; the server's matcher cache
answers exactly as brute force does."""

from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np
import pytest

from vigil.errors import StorageError
from vigil.safety.hashing.banks import Bank, BankEntry, BankKind, BankName, EntryId, Matcher
from vigil.safety.hashing.index import BruteForceIndex, MultiIndexHashIndex
from vigil.safety.hashing.pdq import PdqHash
from vigil.server.hashindex import BankMatcherCache, MatcherSource, load_index, save_index, saved_revision


def _file_mapped(array: object) -> bool:
    while array is not None and not isinstance(array, mmap.mmap):
        array = getattr(array, "base", None)
    return array is not None


def test_saved_index_loads_mapped_and_answers_alike(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    packed = rng.integers(0, 256, size=(5000, 32), dtype=np.uint8)
    built = MultiIndexHashIndex()
    built.add_array(packed)
    save_index(built, tmp_path / "bank")
    save_index(built, tmp_path / "bank")  # replacing an existing index works too
    loaded = load_index(tmp_path / "bank")
    arrays = loaded.arrays()
    for name in ("hashes", "offsets", "ids"):
        assert _file_mapped(arrays[name]), name  # mapped from the files, neither read into memory nor rebuilt
    brute = BruteForceIndex()
    brute.add_array(packed)
    near = bytearray(packed[42].tobytes())
    near[0] ^= 0xFF  # 8 bits away
    queries = [PdqHash(bytes(near)), PdqHash(rng.integers(0, 256, 32, dtype=np.uint8).tobytes())]
    assert loaded.query_many(queries, 31) == brute.query_many(queries, 31)
    assert [m.id for m in loaded.query(queries[0], 31)] == [42]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bank"]  # no staging directory left behind


def test_missing_or_damaged_index_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        load_index(tmp_path / "absent")
    built = MultiIndexHashIndex()
    built.add_array(np.zeros((10, 32), dtype=np.uint8))
    save_index(built, tmp_path / "bank")
    np.save(tmp_path / "bank" / "ids.npy", np.zeros(3, dtype=np.uint32))
    with pytest.raises(StorageError):
        load_index(tmp_path / "bank")
    (tmp_path / "bank" / "offsets.npy").write_bytes(b"not an array")
    with pytest.raises(StorageError):
        load_index(tmp_path / "bank")


def _bank(name: str, packed: np.ndarray, kind: BankKind = BankKind.NORMAL, threshold: int = 31) -> Bank:
    entries = tuple(
        BankEntry(EntryId(row.tobytes().hex()), PdqHash(row.tobytes()), ())
        for row in np.unique(packed, axis=0)
    )
    return Bank(BankName(name), kind, entries, threshold)


def _near(rng: np.random.Generator, row: np.ndarray, bits: int) -> PdqHash:
    flipped = np.unpackbits(row.copy())
    flipped[rng.choice(256, size=bits, replace=False)] ^= 1
    return PdqHash(np.packbits(flipped).tobytes())


def test_bank_matcher_cache_matches_as_brute_force_and_reloads_without_rebuilding(tmp_path: Path) -> None:
    rng = np.random.default_rng(12)
    normal = rng.integers(0, 256, size=(4000, 32), dtype=np.uint8)
    strict = rng.integers(0, 256, size=(500, 32), dtype=np.uint8)
    negative = normal[:20]  # a few of the normal bank's images are known benign
    banks = [
        _bank("csam", normal),
        _bank("strict", strict, threshold=10),
        _bank("benign", negative, BankKind.NEGATIVE, threshold=5),
    ]
    queries: list[list[PdqHash]] = []
    for i in range(120):
        source = (normal, strict)[i % 2]
        planted = [_near(rng, source[(7 * i) % len(source)], i % 32)]
        randoms = [PdqHash(rng.integers(0, 256, 32, dtype=np.uint8).tobytes()) for _ in range(7)]
        queries.append(planted + randoms if i % 3 else randoms + planted)
    brute = Matcher(banks, index_factory=BruteForceIndex)
    expected = [brute.match_hashes(q) for q in queries]
    assert sum(r.is_match for r in expected) > 40 and sum(bool(r.suppressed_by) for r in expected) > 0

    first = BankMatcherCache(tmp_path / "pdq-index")
    assert first.current("r1") is None
    built = first.install("r1", banks)
    assert first.last_source is MatcherSource.BUILT and first.current("r1") is built
    assert isinstance(built.index, MultiIndexHashIndex)
    assert [built.match_hashes(q) for q in queries] == expected
    assert saved_revision(tmp_path / "pdq-index") == "r1"

    restarted = BankMatcherCache(tmp_path / "pdq-index")
    loaded = restarted.install("r1", banks)
    assert restarted.last_source is MatcherSource.LOADED
    assert isinstance(loaded.index, MultiIndexHashIndex)
    assert _file_mapped(loaded.index.arrays()["ids"])
    assert [loaded.match_hashes(q) for q in queries] == expected

    # Another revision, or the same revision over other hashes, is rebuilt rather than trusted.
    other = BankMatcherCache(tmp_path / "pdq-index")
    other.install("r2", banks)
    assert other.last_source is MatcherSource.BUILT and saved_revision(tmp_path / "pdq-index") == "r2"
    changed = [*banks[:2], _bank("benign", normal[:21], BankKind.NEGATIVE, threshold=5)]
    stale = BankMatcherCache(tmp_path / "pdq-index")
    rebuilt = stale.install("r2", changed)
    assert stale.last_source is MatcherSource.BUILT
    assert [rebuilt.match_hashes(q) for q in queries] == [
        Matcher(changed, index_factory=BruteForceIndex).match_hashes(q) for q in queries
    ]

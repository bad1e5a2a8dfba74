"""A built PDQ index saved to disk and loaded memory-mapped, without rebuilding."""

from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np
import pytest

from vigil.errors import StorageError
from vigil.safety.hashing.index import BruteForceIndex, MultiIndexHashIndex
from vigil.safety.hashing.pdq import PdqHash
from vigil.server.hashindex import load_index, save_index


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

"""Exact Hamming-radius search over large banks of PDQ hashes.

One small interface, `HashIndex`: `add` hashes (each gets the next integer id, starting at 0) and
`query(hash, threshold)` returns every `(id, distance)` with distance <= threshold, sorted by distance then
id. Results are exact: a hash list decides whether an image is withheld and reported, so an index that
silently misses true matches (approximate nearest-neighbour search) is not acceptable here.

- `BruteForceIndex` XORs the query against every stored hash and popcounts with NumPy. Simple, obviously
  right, O(n) per query: the baseline and the reference for tests.
- `MultiIndexHashIndex` is multi-index hashing (Norouzi et al.) via faiss's `IndexBinaryMultiHash`, as
  python-threatexchange uses: the 256 bits are cut into `chunks` substrings, each indexed in a hash table.
  If two hashes differ in at most `t` bits, by pigeonhole at least one of the `m` chunks differs in at most
  `t // m` bits, so probing every bucket within `t // m` flips of each query chunk, then verifying full
  distances, finds every match. With 16 chunks of 16 bits and t = 31 that is 1 flip: 16 * 17 probes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final, NamedTuple, Protocol

import faiss
import numpy as np
import numpy.typing as npt

from vigil.errors import ValidationError
from vigil.safety.hashing.pdq import HASH_BITS, HASH_BYTES, PdqHash

__all__ = [
    "BruteForceIndex",
    "HashIndex",
    "IndexMatch",
    "MultiIndexHashIndex",
    "hashes_to_array",
]

_WORDS: Final = HASH_BYTES // 8


class IndexMatch(NamedTuple):
    id: int
    """Position of the hash in insertion order (0-based)."""
    distance: int


class HashIndex(Protocol):
    """Exact radius search over PDQ hashes; ids are insertion positions."""

    def __len__(self) -> int: ...

    def add(self, hashes: Iterable[PdqHash]) -> range:
        """Append hashes; returns the ids they were given."""
        ...

    def add_array(self, packed: npt.NDArray[np.uint8]) -> range:
        """Append an n x 32 uint8 array of packed hashes (the bulk path); returns their ids."""
        ...

    def query(self, query: PdqHash, threshold: int) -> list[IndexMatch]:
        """Every stored hash within `threshold` bits, sorted by (distance, id)."""
        ...

    def query_many(self, queries: Sequence[PdqHash], threshold: int) -> list[list[IndexMatch]]:
        """`query` for several hashes at once (e.g. the 8 dihedral variants of one image)."""
        ...


def hashes_to_array(hashes: Iterable[PdqHash]) -> npt.NDArray[np.uint8]:
    """Pack hashes into an n x 32 uint8 array (row i = hash i's bytes)."""
    blob = b"".join(h.digest for h in hashes)
    return np.frombuffer(blob, dtype=np.uint8).reshape(-1, HASH_BYTES).copy()


def _check_array(packed: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    if packed.dtype != np.uint8 or packed.ndim != 2 or packed.shape[1] != HASH_BYTES:
        raise ValidationError(f"expected an n x {HASH_BYTES} uint8 array, got {packed.dtype} {packed.shape}")
    return np.ascontiguousarray(packed)


def _check_threshold(threshold: int) -> None:
    if not 0 <= threshold <= HASH_BITS:
        raise ValidationError(f"threshold must be in 0..{HASH_BITS}, got {threshold}")


def _sorted(ids: npt.NDArray[np.int64], distances: npt.NDArray[np.int64]) -> list[IndexMatch]:
    order = np.lexsort((ids, distances))
    return [IndexMatch(int(i), int(d)) for i, d in zip(ids[order], distances[order], strict=True)]


class BruteForceIndex:
    """Linear scan: XOR + popcount of every stored hash, vectorised with NumPy."""

    def __init__(self) -> None:
        # Stored as n x 4 uint64 words: 4 XOR/popcount ops per hash instead of 32.
        self._words: npt.NDArray[np.uint64] = np.empty((0, _WORDS), dtype=np.uint64)
        self._pending: list[npt.NDArray[np.uint64]] = []
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, hashes: Iterable[PdqHash]) -> range:
        return self.add_array(hashes_to_array(hashes))

    def add_array(self, packed: npt.NDArray[np.uint8]) -> range:
        words = _check_array(packed).view(np.uint64).reshape(-1, _WORDS)
        self._pending.append(words.copy())
        start = self._size
        self._size += len(words)
        return range(start, self._size)

    def _all(self) -> npt.NDArray[np.uint64]:
        # Concatenate once per batch of adds, not on every add, so bulk loading stays linear.
        if self._pending:
            self._words = np.concatenate([self._words, *self._pending])
            self._pending.clear()
        return self._words

    def distances(self, query: PdqHash) -> npt.NDArray[np.int64]:
        """Distance from `query` to every stored hash, in id order."""
        q = np.frombuffer(query.digest, dtype=np.uint64)
        counts = np.bitwise_count(self._all() ^ q)
        distances: npt.NDArray[np.int64] = counts.sum(axis=1, dtype=np.int64)
        return distances

    def query(self, query: PdqHash, threshold: int) -> list[IndexMatch]:
        _check_threshold(threshold)
        distances = self.distances(query)
        ids = np.flatnonzero(distances <= threshold).astype(np.int64)
        return _sorted(ids, distances[ids])

    def query_many(self, queries: Sequence[PdqHash], threshold: int) -> list[list[IndexMatch]]:
        return [self.query(q, threshold) for q in queries]


class MultiIndexHashIndex:
    """Exact multi-index hashing over faiss `IndexBinaryMultiHash`.

    `chunks` hash tables each key on `256 // chunks` bits. More chunks mean shorter keys, fuller buckets
    and more candidates to verify; fewer mean more flip patterns to probe. 16 x 16 bits is the sweet spot
    for t = 31 on banks of 10^5..10^7 (see BENCHMARKS.md).
    """

    def __init__(self, chunks: int = 16) -> None:
        if chunks < 1 or HASH_BITS % chunks or HASH_BITS // chunks > 64:
            raise ValidationError(f"chunks must divide {HASH_BITS} into keys of <= 64 bits, got {chunks}")
        self._chunks = chunks
        self._index = faiss.IndexBinaryMultiHash(HASH_BITS, chunks, HASH_BITS // chunks)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, hashes: Iterable[PdqHash]) -> range:
        return self.add_array(hashes_to_array(hashes))

    def add_array(self, packed: npt.NDArray[np.uint8]) -> range:
        packed = _check_array(packed)
        if len(packed):
            self._index.add(packed)
        start = self._size
        self._size += len(packed)
        return range(start, self._size)

    def query(self, query: PdqHash, threshold: int) -> list[IndexMatch]:
        return self.query_many([query], threshold)[0]

    def query_many(self, queries: Sequence[PdqHash], threshold: int) -> list[list[IndexMatch]]:
        _check_threshold(threshold)
        if not queries:
            return []
        if self._size == 0:
            return [[] for _ in queries]
        # Pigeonhole bound that makes the search exact (see module docstring).
        self._index.nflip = threshold // self._chunks
        # faiss's binary range search keeps distances strictly below the radius.
        limits, distances, ids = self._index.range_search(hashes_to_array(queries), threshold + 1)
        results: list[list[IndexMatch]] = []
        for i in range(len(queries)):
            lo, hi = int(limits[i]), int(limits[i + 1])
            results.append(_sorted(ids[lo:hi].astype(np.int64), distances[lo:hi].astype(np.int64)))
        return results

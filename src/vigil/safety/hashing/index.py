"""Exact Hamming-radius search over large banks of PDQ hashes.

One small interface, `HashIndex`: `add` hashes (each gets the next integer id, starting at 0) and
`query(hash, threshold)` returns every `(id, distance)` with distance <= threshold, sorted by distance then
id. Results are exact: a hash list decides whether an image is withheld and reported, so an index that
silently misses true matches (approximate nearest-neighbour search) is not acceptable here.

- `BruteForceIndex` XORs the query against every stored hash and popcounts with NumPy. Simple, obviously
  right, O(n) per query: the baseline and the reference for tests.
- `MultiIndexHashIndex` is multi-index hashing (Norouzi et al.): the 256 bits are cut into `m` chunks of
  about 256/m bits, and for each chunk a table maps every chunk value to the ids whose hash has it. If two
  hashes differ in at most `t` bits, by pigeonhole some chunk differs in at most `r = t // m` bits (else
  the total would be at least (r + 1) * m > t). So probing, for each chunk, every value within `r` flips of
  the query's chunk and then verifying the full distance of the candidates finds every match. The chunk
  count is chosen from the bank size so a table bucket holds about one hash: at 10M hashes, 11 chunks of
  23-24 bits and r = 2 (about 3,200 probes and as many candidates per query hash).

  The tables are flat arrays (CSR: `offsets` into `ids`), so a built index is three arrays that
  `arrays()` hands out and `from_arrays` takes back, e.g. memory-mapped from disk by the caller
  (`vigil.safety` does no I/O), with no rebuilding.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations
from typing import Final, NamedTuple, Protocol

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


# Design point for choosing the chunking: the PDQ match threshold (queries at other thresholds stay exact).
_DESIGN_THRESHOLD: Final = 31
# Offsets tables may hold up to this many entries per stored hash (plus a floor for small banks).
_OFFSETS_PER_HASH: Final = 12
_MIN_OFFSETS: Final = 1 << 16
_MAX_CHUNK_BITS: Final = 26
_FORMAT: Final = 1


def _chunk_widths(chunks: int) -> tuple[int, ...]:
    """256 bits cut into `chunks` contiguous chunks as evenly as possible (wider ones first)."""
    base, extra = divmod(HASH_BITS, chunks)
    return tuple(base + 1 if i < extra else base for i in range(chunks))


def _probe_count(width: int, radius: int) -> int:
    return sum(math.comb(width, k) for k in range(min(radius, width) + 1))


def choose_chunks(size: int) -> int:
    """The chunk count with the fewest probes plus candidates per query hash at t = 31 for `size`
    hashes, among those whose tables fit in `_OFFSETS_PER_HASH` entries per hash."""
    budget = max(_MIN_OFFSETS, _OFFSETS_PER_HASH * size)
    best, best_cost = 0, math.inf
    for chunks in range(HASH_BITS // _MAX_CHUNK_BITS + 1, 65):
        widths = _chunk_widths(chunks)
        if sum(1 << w for w in widths) > budget:
            continue
        radius = _DESIGN_THRESHOLD // chunks
        probes = [_probe_count(w, radius) for w in widths]
        # A candidate costs a random read of its hash: weigh it above a probe (two adjacent reads).
        cost = sum(probes) + 2 * sum(p * size / (1 << w) for p, w in zip(probes, widths, strict=True))
        if cost < best_cost:
            best, best_cost = chunks, cost
    return best


def _word(packed: npt.NDArray[np.uint8], word: int) -> npt.NDArray[np.uint64]:
    """Bits 64*word .. 64*word+63 of every hash (most significant first) as integers."""
    column = np.ascontiguousarray(packed[:, 8 * word : 8 * word + 8])
    return column.view(">u8").ravel().astype(np.uint64)


def _chunk_values(packed: npt.NDArray[np.uint8], start: int, width: int) -> npt.NDArray[np.int64]:
    """Bits [start, start + width) of every hash (bit 0 = most significant), as integers."""
    word, offset = divmod(start, 64)
    end = offset + width
    if end <= 64:
        value = _word(packed, word) >> np.uint64(64 - end)
    else:
        value = (_word(packed, word) << np.uint64(end - 64)) | (
            _word(packed, word + 1) >> np.uint64(128 - end)
        )
    return (value & np.uint64((1 << width) - 1)).astype(np.int64)


def _as_words(packed: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint64]:
    """The same bytes as n x 4 native words (no copy): XOR + popcount does not care about byte order."""
    return packed.view(np.uint64).reshape(-1, _WORDS)


class MultiIndexHashIndex:
    """Exact multi-index hashing over flat NumPy tables (see the module docstring).

    Adding is a bulk operation: the tables are (re)built on the first query after an add, in
    O(n log n) per chunk. `chunks=None` picks the chunking from the bank size at that point.
    """

    def __init__(self, chunks: int | None = None) -> None:
        if chunks is not None and not (
            HASH_BITS // _MAX_CHUNK_BITS < chunks <= HASH_BITS
            and max(_chunk_widths(chunks)) <= _MAX_CHUNK_BITS
        ):
            raise ValidationError(
                f"chunks must cut {HASH_BITS} bits into keys of at most {_MAX_CHUNK_BITS} bits, got {chunks}"
            )
        self._requested_chunks = chunks
        self._packed: npt.NDArray[np.uint8] = np.empty((0, HASH_BYTES), dtype=np.uint8)
        self._pending: list[npt.NDArray[np.uint8]] = []
        self._size = 0
        self._built = False
        self._widths: tuple[int, ...] = ()
        self._starts: tuple[int, ...] = ()
        self._bases: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self._offsets: npt.NDArray[np.uint32] = np.zeros(1, dtype=np.uint32)
        self._bounds: npt.NDArray[np.uint32] = np.zeros((0, 2), dtype=np.uint32)
        self._ids: npt.NDArray[np.uint32] = np.empty(0, dtype=np.uint32)
        self._masks: dict[int, list[npt.NDArray[np.int64]]] = {}

    def __len__(self) -> int:
        return self._size

    @property
    def chunks(self) -> int:
        self._build()
        return len(self._widths)

    def add(self, hashes: Iterable[PdqHash]) -> range:
        return self.add_array(hashes_to_array(hashes))

    def add_array(self, packed: npt.NDArray[np.uint8]) -> range:
        packed = _check_array(packed)
        if len(packed):
            self._pending.append(packed.copy())
            self._built = False
        start = self._size
        self._size += len(packed)
        return range(start, self._size)

    def arrays(self) -> dict[str, npt.NDArray[np.generic]]:
        """The built index as plain arrays (to store; `from_arrays` takes them back without rebuilding)."""
        self._build()
        layout = np.array([_FORMAT, *self._widths], dtype=np.int64)
        return {"layout": layout, "hashes": self._packed, "offsets": self._offsets, "ids": self._ids}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, npt.NDArray[np.generic]]) -> MultiIndexHashIndex:
        """An index over `arrays()` output, used as given (memory-mapped arrays stay mapped).

        Checks shapes and types, not contents: the arrays must come from `arrays()`. Raises
        `ValidationError` on a layout this version does not read.
        """
        try:
            layout, packed = arrays["layout"], arrays["hashes"]
            offsets, ids = arrays["offsets"], arrays["ids"]
        except KeyError as error:
            raise ValidationError(f"index arrays lack {error}") from error
        if layout.ndim != 1 or len(layout) < 2 or int(layout[0]) != _FORMAT:
            raise ValidationError(f"unsupported index layout (format {_FORMAT} expected)")
        widths = tuple(int(w) for w in layout[1:])
        if sum(widths) != HASH_BITS or max(widths) > _MAX_CHUNK_BITS or min(widths) < 1:
            raise ValidationError("index chunk widths must add up to 256 bits")
        packed = _check_array(np.asarray(packed))
        size = len(packed)
        if (
            offsets.dtype != np.uint32
            or offsets.shape != (sum(1 << w for w in widths) + 1,)
            or ids.dtype != np.uint32
            or ids.shape != (len(widths) * size,)
        ):
            raise ValidationError("index tables do not fit the layout and the number of hashes")
        index = cls(len(widths))
        index._packed = packed
        index._size = size
        index._adopt(widths, offsets, ids)  # type: ignore[arg-type]
        return index

    def _adopt(
        self, widths: tuple[int, ...], offsets: npt.NDArray[np.uint32], ids: npt.NDArray[np.uint32]
    ) -> None:
        self._widths = widths
        self._starts = tuple(int(s) for s in np.cumsum((0, *widths[:-1])))
        self._bases = np.cumsum([0, *(1 << w for w in widths[:-1])]).astype(np.int64)
        # Plain views of (possibly memory-mapped) arrays: np.memmap's indexing wrapper costs ~1 ms a lookup.
        self._offsets, self._ids = np.asarray(offsets), np.asarray(ids)
        self._packed = np.asarray(self._packed)
        # Each bucket's (begin, end) as one row, so a probe reads both in one gather.
        self._bounds = np.lib.stride_tricks.as_strided(
            self._offsets,
            shape=(len(self._offsets) - 1, 2),
            strides=(self._offsets.strides[0],) * 2,
            writeable=False,
        )
        self._masks = {}
        self._built = True

    def _build(self) -> None:
        if self._built:
            return
        if self._pending:
            self._packed = np.concatenate([self._packed, *self._pending])
            self._pending.clear()
        size = len(self._packed)
        widths = _chunk_widths(self._requested_chunks or choose_chunks(size))
        offsets = np.zeros(sum(1 << w for w in widths) + 1, dtype=np.uint32)
        ids = np.empty(len(widths) * size, dtype=np.uint32)
        base = 0
        for chunk, (start, width) in enumerate(zip(np.cumsum((0, *widths[:-1])), widths, strict=True)):
            values = _chunk_values(self._packed, int(start), width)
            order = np.argsort(values, kind="stable")
            ids[chunk * size : (chunk + 1) * size] = order
            counts = np.bincount(values, minlength=1 << width)
            offsets[base + 1 : base + (1 << width) + 1] = chunk * size + np.cumsum(counts)
            base += 1 << width
        self._adopt(widths, offsets, ids)

    def _probe_masks(self, radius: int) -> list[npt.NDArray[np.int64]]:
        """For each chunk, every value with at most `radius` bits set (XOR masks to probe)."""
        if radius not in self._masks:
            masks = []
            for width in self._widths:
                flips = [0]
                for k in range(1, min(radius, width) + 1):
                    flips.extend(sum(1 << b for b in bits) for bits in combinations(range(width), k))
                masks.append(np.array(flips, dtype=np.int64))
            self._masks[radius] = masks
        return self._masks[radius]

    def query(self, query: PdqHash, threshold: int) -> list[IndexMatch]:
        return self.query_many([query], threshold)[0]

    def query_many(self, queries: Sequence[PdqHash], threshold: int) -> list[list[IndexMatch]]:
        _check_threshold(threshold)
        if not queries:
            return []
        if self._size == 0:
            return [[] for _ in queries]
        self._build()
        radius = threshold // len(self._widths)
        if _probe_count(max(self._widths), radius) * len(self._widths) > self._size:
            # So wide a radius probes more buckets than there are hashes: scanning is cheaper.
            return self._scan(queries, threshold)
        query_packed = hashes_to_array(queries)
        query_words = _as_words(query_packed)
        keys, owners = [], []
        for chunk, (start, width, masks) in enumerate(
            zip(self._starts, self._widths, self._probe_masks(radius), strict=True)
        ):
            values = _chunk_values(query_packed, start, width)
            keys.append(((values[:, None] ^ masks[None, :]) + self._bases[chunk]).ravel())
            owners.append(np.repeat(np.arange(len(queries)), len(masks)))
        bounds = self._bounds[np.concatenate(keys)].astype(np.int64)
        begin = bounds[:, 0]
        lengths = bounds[:, 1] - begin
        total = int(lengths.sum())
        if total == 0:
            return [[] for _ in queries]
        # Expand every probed bucket [begin, begin + length) into positions, without a Python loop.
        ends = np.cumsum(lengths)
        positions = np.arange(total, dtype=np.int64) + np.repeat(begin - (ends - lengths), lengths)
        owner = np.repeat(np.concatenate(owners), lengths)
        candidate = self._ids[positions].astype(np.int64)
        stored = _as_words(self._packed)
        distances = np.bitwise_count(stored[candidate] ^ query_words[owner]).sum(axis=1, dtype=np.int64)
        keep = distances <= threshold
        # A match is found through every chunk it is close in: keep each (query, id) pair once. Cheaper
        # after the check than before it, as almost every candidate fails it.
        pairs, first = np.unique(owner[keep] * self._size + candidate[keep], return_index=True)
        owner, candidate = np.divmod(pairs, self._size)
        distances = distances[keep][first]
        results: list[list[IndexMatch]] = []
        for i in range(len(queries)):
            mine = owner == i
            results.append(_sorted(candidate[mine], distances[mine]))
        return results

    def _scan(self, queries: Sequence[PdqHash], threshold: int) -> list[list[IndexMatch]]:
        stored = _as_words(self._packed)
        results = []
        for query in queries:
            distances = np.bitwise_count(stored ^ _as_words(hashes_to_array([query]))).sum(
                axis=1, dtype=np.int64
            )
            ids = np.flatnonzero(distances <= threshold).astype(np.int64)
            results.append(_sorted(ids, distances[ids]))
        return results

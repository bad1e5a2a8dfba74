"""A built PDQ index on disk: saved once, then memory-mapped by every process that matches against it.

Building the multi-index tables for 10M hashes takes about a minute and twice the index's memory; loading
them this way takes milliseconds and shares the pages between worker processes through the page cache.
A directory holds one `.npy` file per array of `MultiIndexHashIndex.arrays()` and the revision of the
banks it was built from; it is written under a temporary name and renamed into place, so a reader never
sees half an index.

`BankMatcherCache` is what the server matches with: one `Matcher` per revision of its enabled banks, built
once (or loaded from the saved index when that was built from the same revision and holds the same
hashes) and reused for every lookup until the banks change.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from vigil.errors import StorageError, ValidationError
from vigil.safety.hashing.banks import Bank, Matcher, indexed_hashes
from vigil.safety.hashing.index import MultiIndexHashIndex

__all__ = ["BankMatcherCache", "MatcherSource", "load_index", "save_index", "saved_revision"]

_ARRAYS = ("layout", "hashes", "offsets", "ids")
_REVISION = "revision"

log = logging.getLogger("vigil.server.hashindex")


def save_index(index: MultiIndexHashIndex, directory: Path, *, revision: str = "") -> None:
    """Writes the built index to `directory` (replacing what is there), atomically, with the revision of
    the banks it indexes (`saved_revision` reads it back)."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        for name, array in index.arrays().items():
            with (staging / f"{name}.npy").open("wb") as f:
                np.save(f, np.asarray(array), allow_pickle=False)
                f.flush()
                os.fsync(f.fileno())
        (staging / _REVISION).write_text(revision, encoding="utf-8")
        if directory.exists():
            shutil.rmtree(directory)
        staging.rename(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def load_index(directory: Path) -> MultiIndexHashIndex:
    """The index saved in `directory`, memory-mapped read-only. Raises StorageError if it is missing or
    damaged (a wrong shape or layout)."""
    try:
        arrays = {
            name: np.load(directory / f"{name}.npy", mmap_mode="r", allow_pickle=False) for name in _ARRAYS
        }
        return MultiIndexHashIndex.from_arrays(arrays)
    except (OSError, ValueError) as error:
        raise StorageError(f"cannot read the PDQ index at {directory}: {error}") from error
    except ValidationError as error:
        raise StorageError(f"the PDQ index at {directory} is damaged: {error.detail}") from error


def saved_revision(directory: Path) -> str | None:
    """The bank revision the index saved in `directory` was built from, or None if there is none."""
    try:
        return (directory / _REVISION).read_text(encoding="utf-8")
    except OSError:
        return None


class MatcherSource(enum.Enum):
    BUILT = "built"
    LOADED = "loaded"


class BankMatcherCache:
    """The matcher for the current revision of the enabled banks.

    `revision` is any string that changes whenever the banks do (the server derives it from the banks'
    rows). With a `directory`, a built index is saved there and a later process loads it, memory-mapped,
    instead of rebuilding, when it was saved for the same revision and holds exactly the same hashes
    (so a mismatched file is rebuilt, never trusted). `lock` serialises builds between requests.
    """

    def __init__(self, directory: Path | None) -> None:
        self._directory = directory
        self._revision: str | None = None
        self._matcher: Matcher | None = None
        self.lock = asyncio.Lock()
        self.last_source: MatcherSource | None = None
        """How the current matcher was made (for tests and the log)."""

    def current(self, revision: str) -> Matcher | None:
        """The matcher if it was made for `revision`, else None (build one with `install`)."""
        return self._matcher if revision == self._revision else None

    def install(self, revision: str, banks: Sequence[Bank]) -> Matcher:
        """Makes and keeps the matcher for `banks` at `revision`. Blocking (a build at 10M hashes takes
        minutes): call it off the event loop."""
        packed = indexed_hashes(banks)
        index = self._load(revision, packed)
        source = MatcherSource.LOADED
        if index is None:
            source = MatcherSource.BUILT
            index = MultiIndexHashIndex()
            index.add_array(packed)
            index.arrays()  # builds the tables now rather than on the first lookup
            if self._directory is not None and len(packed):
                try:
                    save_index(index, self._directory, revision=revision)
                except OSError as error:
                    # Another worker may be saving the same index; this one still matches from memory.
                    log.warning("could not save the PDQ index: %s", error)
        matcher = Matcher(banks, index=index)
        self._revision, self._matcher, self.last_source = revision, matcher, source
        log.info("PDQ matcher %s for %d hashes", source.value, len(packed))
        return matcher

    def _load(self, revision: str, packed: npt.NDArray[np.uint8]) -> MultiIndexHashIndex | None:
        if self._directory is None or not len(packed) or saved_revision(self._directory) != revision:
            return None
        try:
            index = load_index(self._directory)
        except StorageError as error:
            log.warning("rebuilding the PDQ index: %s", error)
            return None
        if not np.array_equal(index.arrays()["hashes"], packed):
            return None
        return index

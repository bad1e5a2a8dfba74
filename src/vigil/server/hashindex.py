"""A built PDQ index on disk: saved once, then memory-mapped by every process that matches against it.

Building the multi-index tables for 10M hashes takes about a minute and twice the index's memory; loading
them this way takes milliseconds and shares the pages between worker processes through the page cache.
A directory holds one `.npy` file per array of `MultiIndexHashIndex.arrays()`; it is written under a
temporary name and renamed into place, so a reader never sees half an index.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from vigil.errors import StorageError, ValidationError
from vigil.safety.hashing.index import MultiIndexHashIndex

__all__ = ["load_index", "save_index"]

_ARRAYS = ("layout", "hashes", "offsets", "ids")


def save_index(index: MultiIndexHashIndex, directory: Path) -> None:
    """Writes the built index to `directory` (replacing what is there), atomically."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        for name, array in index.arrays().items():
            with (staging / f"{name}.npy").open("wb") as f:
                np.save(f, np.asarray(array), allow_pickle=False)
                f.flush()
                os.fsync(f.fileno())
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

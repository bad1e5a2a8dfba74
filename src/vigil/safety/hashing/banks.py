"""Hash banks and the `Matcher` that looks images up in them.

A bank is a named set of PDQ hashes with its own match threshold, an enabled flag and a kind: a NORMAL
bank holds hashes of known abusive images; a NEGATIVE (allow) bank holds hashes of known benign images
that collide with normal entries (a widely shared meme, a stock photo). An image that matches an enabled
negative bank is never reported, whatever normal banks it also matches: the negative bank is how a
confirmed false positive is silenced for everyone without deleting the (otherwise useful) normal entry.

Parsers read python-threatexchange's local signal files (`pdq <hex>` per line, see its
`exchanges/impl/file_api.py`) and a plain CSV (`hash[,label...]`).
"""

from __future__ import annotations

import csv
import enum
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import NewType

import numpy as np
import numpy.typing as npt

from vigil.errors import ValidationError
from vigil.safety.hashing.index import HashIndex, MultiIndexHashIndex, hashes_to_array
from vigil.safety.hashing.pdq import (
    HASH_BITS,
    MATCH_DISTANCE_THRESHOLD,
    MAX_QUERY_HASHES,
    Dihedral,
    ImageHash,
    PdqHash,
)

__all__ = [
    "Bank",
    "BankEntry",
    "BankKind",
    "BankName",
    "EntryId",
    "Match",
    "MatchResult",
    "Matcher",
    "indexed_hashes",
    "parse_csv",
    "parse_threatexchange_file",
]

BankName = NewType("BankName", str)
EntryId = NewType("EntryId", str)

PDQ_SIGNAL_TYPE = "pdq"


class BankKind(enum.Enum):
    NORMAL = "normal"
    NEGATIVE = "negative"


def _check_threshold(threshold: int) -> None:
    if not 0 <= threshold <= HASH_BITS:
        raise ValidationError(f"threshold must be in 0..{HASH_BITS}, got {threshold}")


@dataclass(frozen=True, slots=True)
class BankEntry:
    id: EntryId
    hash: PdqHash
    labels: tuple[str, ...] = ()
    """Free-form metadata (e.g. a category or source) carried from the bank file to the match."""
    threshold: int | None = None
    """Overrides the bank's threshold for this entry (signed hash lists carry one per entry)."""

    def __post_init__(self) -> None:
        if self.threshold is not None:
            _check_threshold(self.threshold)


@dataclass(frozen=True, slots=True)
class Bank:
    name: BankName
    kind: BankKind
    entries: tuple[BankEntry, ...]
    threshold: int = MATCH_DISTANCE_THRESHOLD
    enabled: bool = True

    def __post_init__(self) -> None:
        if not self.name:
            raise ValidationError("a bank needs a name")
        _check_threshold(self.threshold)
        seen: set[EntryId] = set()
        for entry in self.entries:
            if entry.id in seen:
                raise ValidationError(f"bank {self.name!r}: duplicate entry id {entry.id!r}")
            seen.add(entry.id)

    def threshold_for(self, entry: BankEntry) -> int:
        return self.threshold if entry.threshold is None else entry.threshold


@dataclass(frozen=True, slots=True)
class Match:
    bank: BankName
    entry: BankEntry
    distance: int
    dihedral: Dihedral
    """Which rotation/flip of the query matched (ORIGINAL when only one hash was looked up)."""
    trimmed: bool = False
    """Whether it was the query with its uniform border trimmed that matched."""


@dataclass(frozen=True, slots=True)
class MatchResult:
    matches: tuple[Match, ...]
    """Matches in enabled normal banks, empty if suppressed. Best (lowest distance) first."""
    suppressed_by: tuple[Match, ...] = field(default=())
    """Matches in enabled negative banks; when non-empty, `matches` is empty."""
    suppressed: tuple[Match, ...] = field(default=())
    """The normal-bank matches that were withheld because of `suppressed_by` (for audit, not action)."""

    @property
    def is_match(self) -> bool:
        return bool(self.matches)


def _hash_or_error(text: str, line_number: int) -> PdqHash:
    try:
        return PdqHash.from_hex(text.strip())
    except ValidationError as exc:
        raise ValidationError(f"line {line_number}: {exc.detail}") from exc


def parse_threatexchange_file(
    text: str, *, bare_signal_type: str | None = None, skip_other_signal_types: bool = True
) -> list[BankEntry]:
    """Parse a threatexchange local signal file: one `<signal type> <signal>` per line.

    Lines of other signal types (`video_md5 ...`) are skipped if `skip_other_signal_types`, since one file
    may hold several types. With `bare_signal_type="pdq"` a line may be a bare hash, as when the
    threatexchange collaboration config names the type. Blank lines are ignored; duplicate hashes collapse
    into one entry, as threatexchange keys signals by (type, value). The entry id is the hash's hex.
    Raises `ValidationError` naming the 1-based line number of the first bad line.
    """
    entries: dict[PdqHash, BankEntry] = {}
    for line_number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        signal_type, _, signal = line.partition(" ")
        if not signal:
            if bare_signal_type != PDQ_SIGNAL_TYPE:
                raise ValidationError(
                    f"line {line_number}: expected '<signal type> <signal>', got {line[:80]!r}"
                )
            signal_type, signal = PDQ_SIGNAL_TYPE, line
        if signal_type != PDQ_SIGNAL_TYPE:
            if skip_other_signal_types:
                continue
            raise ValidationError(f"line {line_number}: unsupported signal type {signal_type[:40]!r}")
        pdq = _hash_or_error(signal, line_number)
        entries.setdefault(pdq, BankEntry(id=EntryId(pdq.hex()), hash=pdq))
    return list(entries.values())


def parse_csv(text: str) -> list[BankEntry]:
    """Parse CSV rows `hash[,label...]`; an optional first row whose first cell is `hash` is a header.

    The entry id is the hash's hex, so a hash may appear only once. Raises `ValidationError` naming
    the 1-based line number of the first bad row (malformed hash, duplicate hash, unparseable CSV).
    """
    entries: list[BankEntry] = []
    first_line: dict[PdqHash, int] = {}
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        for row in reader:
            line_number = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if not entries and not first_line and row[0].strip().lower() == "hash":
                continue
            pdq = _hash_or_error(row[0], line_number)
            if pdq in first_line:
                raise ValidationError(
                    f"line {line_number}: hash {pdq.hex()} already on line {first_line[pdq]}"
                )
            first_line[pdq] = line_number
            labels = tuple(cell.strip() for cell in row[1:] if cell.strip())
            entries.append(BankEntry(id=EntryId(pdq.hex()), hash=pdq, labels=labels))
    except csv.Error as exc:
        raise ValidationError(f"line {reader.line_num}: {exc}") from exc
    return entries


def indexed_hashes(banks: Iterable[Bank]) -> npt.NDArray[np.uint8]:
    """The packed hashes a `Matcher` indexes for `banks`, in id order: every enabled bank's entries."""
    return hashes_to_array(e.hash for bank in banks if bank.enabled for e in bank.entries)


class Matcher:
    """Looks hashes up in a fixed set of banks through one index.

    All enabled banks share one index queried at the largest threshold in use; each hit is then
    filtered by its own bank/entry threshold. Disabled banks are not indexed at all. Build a new
    Matcher when banks change (building is a bulk load; see BENCHMARKS.md for the cost).
    """

    def __init__(
        self,
        banks: Iterable[Bank],
        *,
        index_factory: Callable[[], HashIndex] = MultiIndexHashIndex,
        index: HashIndex | None = None,
    ) -> None:
        """`index`, if given, is one built earlier (e.g. loaded from disk) over exactly
        `indexed_hashes(banks)`, used as is; otherwise `index_factory` makes one and the banks are added."""
        self._banks = tuple(banks)
        names = [b.name for b in self._banks]
        if len(set(names)) != len(names):
            raise ValidationError("bank names must be unique")
        self._slots: list[tuple[Bank, BankEntry]] = []
        self._radius = 0
        for bank in self._banks:
            if not bank.enabled:
                continue
            for entry in bank.entries:
                self._slots.append((bank, entry))
                self._radius = max(self._radius, bank.threshold_for(entry))
        if index is None:
            index = index_factory()
            index.add_array(indexed_hashes(self._banks))
        elif len(index) != len(self._slots):
            raise ValidationError(
                f"the index holds {len(index)} hashes, the enabled banks {len(self._slots)}"
            )
        self._index = index

    @property
    def index(self) -> HashIndex:
        return self._index

    @property
    def banks(self) -> tuple[Bank, ...]:
        return self._banks

    def match_image(self, image: ImageHash) -> MatchResult:
        """Match an image by all its orientations' hashes, trimmed and not (or by its one hash if those
        were not computed).

        Raises `LowQualityImageError` if the image's quality is below the matching minimum.
        """
        return self.match_hashes(image.query_hashes(), image.query_variants())

    def match_hashes(
        self, hashes: Sequence[PdqHash], variants: Sequence[tuple[Dihedral, bool]] | None = None
    ) -> MatchResult:
        """Match raw hashes; `variants` says each one's orientation and whether it was trimmed
        (`ImageHash.query_variants`); without it nothing is known of them and every match is reported as
        the original orientation, untrimmed (a layout guessed from the positions mislabelled a second
        trim's and the rescaled copies' hashes).

        The caller vouches for quality: use `match_image` for anything hashed on this device.
        """
        if len(hashes) > MAX_QUERY_HASHES:
            raise ValidationError(
                f"at most {MAX_QUERY_HASHES} query hashes (the orientations, trimmed and not, and rescaled)"
            )
        if variants is None:
            variants = [(Dihedral.ORIGINAL, False)] * len(hashes)
        elif len(variants) != len(hashes):
            raise ValidationError("one variant per query hash")
        best: dict[tuple[BankName, EntryId], Match] = {}
        for variant, hits in enumerate(self._index.query_many(hashes, self._radius)):
            for hit in hits:
                bank, entry = self._slots[hit.id]
                if hit.distance > bank.threshold_for(entry):
                    continue
                key = (bank.name, entry.id)
                previous = best.get(key)
                if previous is None or hit.distance < previous.distance:
                    orientation, trimmed = variants[variant]
                    best[key] = Match(bank.name, entry, hit.distance, orientation, trimmed)
        ranked = sorted(best.values(), key=lambda m: (m.distance, m.bank, m.entry.id))
        kinds = {b.name: b.kind for b in self._banks}
        normal = tuple(m for m in ranked if kinds[m.bank] is BankKind.NORMAL)
        negative = tuple(m for m in ranked if kinds[m.bank] is BankKind.NEGATIVE)
        if negative:
            return MatchResult(matches=(), suppressed_by=negative, suppressed=normal)
        return MatchResult(matches=normal)

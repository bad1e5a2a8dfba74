"""Bank model, bank file parsers and the Matcher (thresholds, enabled flag, negative banks)."""

from __future__ import annotations

import pytest

from vigil.errors import ValidationError
from vigil.safety.hashing.banks import (
    Bank,
    BankEntry,
    BankKind,
    BankName,
    EntryId,
    Matcher,
    parse_csv,
    parse_threatexchange_file,
)
from vigil.safety.hashing.index import BruteForceIndex
from vigil.safety.hashing.pdq import MAX_QUERY_HASHES, Dihedral, ImageHash, LowQualityImageError, PdqHash

BASE = PdqHash(bytes(range(32)))


def _near(base: PdqHash, bits: int) -> PdqHash:
    """`base` with its lowest `bits` bits flipped: exactly `bits` away."""
    value = int.from_bytes(base.digest, "big") ^ ((1 << bits) - 1)
    return PdqHash(value.to_bytes(32, "big"))


def _entry(h: PdqHash, name: str | None = None, threshold: int | None = None) -> BankEntry:
    return BankEntry(EntryId(name or h.hex()), h, threshold=threshold)


def _bank(name: str, *entries: BankEntry, kind: BankKind = BankKind.NORMAL, **kw: object) -> Bank:
    return Bank(BankName(name), kind, tuple(entries), **kw)  # type: ignore[arg-type]


def test_threatexchange_file() -> None:
    text = f"pdq {BASE.hex()}\n\nvideo_md5 d41d8cd98f00b204e9800998ecf8427e\npdq {BASE.hex().upper()}\n"
    entries = parse_threatexchange_file(text)
    assert [(e.id, e.hash) for e in entries] == [(BASE.hex(), BASE)]
    bare = parse_threatexchange_file(BASE.hex() + "\n", bare_signal_type="pdq")
    assert [e.hash for e in bare] == [BASE]


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (f"pdq {BASE.hex()}\npdq nothex\n", 2),
        (f"pdq {BASE.hex()}\n\n{BASE.hex()}\n", 3),  # bare hash without a declared type
        (f"pdq {BASE.hex()[:-1]}\n", 1),
    ],
)
def test_threatexchange_file_errors_name_the_line(text: str, line: int) -> None:
    with pytest.raises(ValidationError, match=rf"^line {line}:"):
        parse_threatexchange_file(text)


def test_threatexchange_file_strict_types() -> None:
    with pytest.raises(ValidationError, match="line 1: unsupported signal type"):
        parse_threatexchange_file("video_md5 d41d8cd98f00b204e9800998ecf8427e", skip_other_signal_types=False)


def test_csv() -> None:
    other = _near(BASE, 3)
    text = f'hash,label\n{BASE.hex()},csam,"a, b"\n\n{other.hex()}\n'
    entries = parse_csv(text)
    assert [(e.hash, e.labels) for e in entries] == [(BASE, ("csam", "a, b")), (other, ())]


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (f"{BASE.hex()}\nzz\n", 2),
        (f"hash\n{BASE.hex()},x\n{BASE.hex()},y\n", 3),
        (f'{BASE.hex()}\n"unterminated\n', 2),  # reported where the open quote starts
    ],
)
def test_csv_errors_name_the_line(text: str, line: int) -> None:
    with pytest.raises(ValidationError, match=rf"^line {line}:"):
        parse_csv(text)


def test_bank_validation() -> None:
    with pytest.raises(ValidationError):
        _bank("b", _entry(BASE, "x"), _entry(_near(BASE, 1), "x"))
    with pytest.raises(ValidationError):
        _bank("b", threshold=300)
    with pytest.raises(ValidationError):
        _bank("")
    with pytest.raises(ValidationError):
        Matcher([_bank("b"), _bank("b")])


@pytest.mark.parametrize("factory", [BruteForceIndex, None])
def test_per_bank_thresholds(factory: type[BruteForceIndex] | None) -> None:
    strict = _bank("strict", _entry(BASE, "s"), threshold=5)
    loose = _bank("loose", _entry(BASE, "l"), threshold=31)
    matcher = Matcher([strict, loose]) if factory is None else Matcher([strict, loose], index_factory=factory)
    result = matcher.match_hashes([_near(BASE, 5)])
    assert [(m.bank, m.distance) for m in result.matches] == [("loose", 5), ("strict", 5)]
    result = matcher.match_hashes([_near(BASE, 6)])
    assert [m.bank for m in result.matches] == ["loose"]
    assert not matcher.match_hashes([_near(BASE, 32)]).is_match


def test_entry_threshold_overrides_bank() -> None:
    bank = _bank("b", _entry(BASE, "tight", threshold=2), _entry(_near(BASE, 40), "default"), threshold=31)
    result = Matcher([bank]).match_hashes([_near(BASE, 3)])
    # 3 bits from "tight" (limit 2): no; 37 bits from "default": no.
    assert not result.is_match
    assert [m.entry.id for m in Matcher([bank]).match_hashes([_near(BASE, 2)]).matches] == ["tight"]


def test_disabled_bank_never_matches() -> None:
    bank = _bank("off", _entry(BASE), enabled=False)
    assert not Matcher([bank]).match_hashes([BASE]).is_match


def test_negative_bank_suppresses_matches() -> None:
    normal = _bank("known", _entry(BASE, "abuse"))
    meme = _near(BASE, 20)
    allow = _bank("allow", _entry(meme, "meme"), kind=BankKind.NEGATIVE, threshold=8)
    matcher = Matcher([normal, allow])
    # The benign meme itself is within 31 of the normal entry, but the negative bank silences it.
    result = matcher.match_hashes([meme])
    assert not result.is_match
    assert [m.entry.id for m in result.suppressed_by] == ["meme"]
    assert [m.entry.id for m in result.suppressed] == ["abuse"]
    # The actual abusive image is far from the meme (20 > 8): still matched.
    assert [m.entry.id for m in matcher.match_hashes([BASE]).matches] == ["abuse"]
    # A disabled negative bank suppresses nothing.
    off = _bank("allow", _entry(meme, "meme"), kind=BankKind.NEGATIVE, threshold=8, enabled=False)
    assert Matcher([normal, off]).match_hashes([meme]).is_match


def test_best_dihedral_is_reported() -> None:
    bank = _bank("b", _entry(BASE, "x"))
    far = _near(BASE, 200)
    queries = [far, _near(BASE, 20), far, _near(BASE, 4), far, far, far, far]
    image = ImageHash(far, quality=100, dihedral=tuple(queries))
    (match,) = Matcher([bank]).match_image(image).matches
    assert (match.distance, match.dihedral) == (4, Dihedral.ROTATE_270)
    with pytest.raises(ValidationError):
        Matcher([bank]).match_hashes([far] * (MAX_QUERY_HASHES + 1))


def test_trimmed_variant_is_reported() -> None:
    bank = _bank("b", _entry(BASE, "x"))
    far = _near(BASE, 200)
    trimmed = [far, far, _near(BASE, 3), far, far, far, far, far]
    image = ImageHash(far, quality=100, dihedral=(far,) * 8, trimmed=tuple(trimmed))
    (match,) = Matcher([bank]).match_image(image).matches
    assert (match.distance, match.dihedral, match.trimmed) == (3, Dihedral.ROTATE_180, True)


def test_low_quality_image_is_refused() -> None:
    with pytest.raises(LowQualityImageError):
        Matcher([_bank("b", _entry(BASE))]).match_image(ImageHash(BASE, quality=49))
    assert Matcher([_bank("b", _entry(BASE))]).match_image(ImageHash(BASE, quality=50)).is_match

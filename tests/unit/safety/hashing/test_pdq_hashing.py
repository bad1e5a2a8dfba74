"""PDQ hashing: conformance with the reference hashes, dihedral matching, unhashable images."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vigil.errors import ValidationError
from vigil.safety.hashing.banks import Bank, BankEntry, BankKind, BankName, EntryId, Matcher
from vigil.safety.hashing.pdq import (
    MATCH_DISTANCE_THRESHOLD,
    Dihedral,
    ImageHash,
    LowQualityImageError,
    PdqHash,
    UndecodableImageError,
    hash_image,
    hash_pixels,
)

# PDQ README: across decoders, images of quality >= 80 hash within distance 10 of the reference.
CONFORMANCE_DISTANCE = 10
CONFORMANCE_MIN_QUALITY = 80


def _expected(root: Path) -> list[tuple[str, PdqHash]]:
    with (root / "expected_pdq.csv").open(newline="") as f:
        return [(row["FilePath"], PdqHash.from_hex(row["Hash"])) for row in csv.DictReader(f)]


def _png(array: np.ndarray, mode: str | None = None) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array, mode=mode).save(out, format="PNG")
    return out.getvalue()


def _smooth(seed: int, height: int = 768) -> np.ndarray:
    """A deterministic, non-square, photo-like (smooth, high-quality) RGB image.

    Random pixel noise is a poor stand-in for a photo: PDQ keeps low frequencies, and noise makes them
    sensitive to resampling. A sum of low-frequency waves behaves like the reference photos.
    """
    rng = np.random.default_rng(seed)
    width = height * 4 // 3
    y, x = np.mgrid[0 : 1 : height * 1j, 0 : 4 / 3 : width * 1j]
    image = np.zeros((height, width, 3))
    for channel in range(3):
        for _ in range(6):
            fx, fy = rng.uniform(1, 12, 2)
            px, py = rng.uniform(0, 2 * np.pi, 2)
            image[:, :, channel] += np.sin(2 * np.pi * fx * x + px) * np.cos(2 * np.pi * fy * y + py)
    scaled = (image - image.min()) / (image.max() - image.min()) * 255
    pixels: np.ndarray = scaled.astype(np.uint8)
    return pixels


def test_reference_hashes_within_conformance_distance(pdq_testdata: Path) -> None:
    expected = _expected(pdq_testdata)
    assert len(expected) >= 15
    checked = 0
    for path, reference in expected:
        result = hash_image((pdq_testdata / path).read_bytes(), dihedral=False)
        if result.quality >= CONFORMANCE_MIN_QUALITY:
            checked += 1
            assert result.hash.distance(reference) <= CONFORMANCE_DISTANCE, path
    assert checked >= 14  # everything but the deliberately tiny misc/small.jpg


def test_dihedral_reference_hashes_from_cpp(pdq_testdata: Path) -> None:
    lines = (pdq_testdata / "expected_pdq_dih_cpp.csv").read_text().split()
    assert len(lines) == 8
    for line in lines:
        hex_hash, path = line.split(",")
        result = hash_image((pdq_testdata / path).read_bytes(), dihedral=False)
        assert result.quality >= CONFORMANCE_MIN_QUALITY
        assert result.hash.distance(PdqHash.from_hex(hex_hash)) <= CONFORMANCE_DISTANCE, path


def test_every_bridge_mod_matches_the_original(pdq_testdata: Path) -> None:
    original = hash_image((pdq_testdata / "bridge-mods" / "aaa-orig.jpg").read_bytes())
    matcher = Matcher([_bank_of(original.hash)])
    mods = sorted((pdq_testdata / "bridge-mods").glob("*.jpg"))
    assert len(mods) == 12
    for mod in mods:
        result = matcher.match_image(hash_image(mod.read_bytes()))
        assert result.is_match, mod.name
        assert result.matches[0].dihedral is Dihedral.ORIGINAL


def _bank_of(*hashes: PdqHash) -> Bank:
    entries = tuple(BankEntry(EntryId(h.hex()), h) for h in hashes)
    return Bank(BankName("known"), BankKind.NORMAL, entries)


def test_rotations_and_flips_match_only_through_dihedral_hashes(pdq_testdata: Path) -> None:
    original = hash_image((pdq_testdata / "dih" / "bridge-1-original.jpg").read_bytes())
    matcher = Matcher([_bank_of(original.hash)])
    images = sorted((pdq_testdata / "dih").glob("*.jpg"))
    assert len(images) == 8
    plain_misses = 0
    for image in images:
        result = hash_image(image.read_bytes())
        assert matcher.match_image(result).is_match, image.name
        # Without dihedral hashes the rotated/flipped copies are far away: dihedrals are what catch them.
        if result.hash.distance(original.hash) > MATCH_DISTANCE_THRESHOLD:
            plain_misses += 1
    assert plain_misses == 7


def test_dihedral_variant_identifies_the_transform(pdq_testdata: Path) -> None:
    original = hash_image((pdq_testdata / "dih" / "bridge-1-original.jpg").read_bytes())
    rotated = hash_image((pdq_testdata / "dih" / "bridge-3-rotate-180.jpg").read_bytes())
    match = Matcher([_bank_of(original.hash)]).match_image(rotated).matches[0]
    assert match.dihedral is Dihedral.ROTATE_180


def test_low_quality_image_is_unhashable_not_matched(pdq_testdata: Path) -> None:
    result = hash_image((pdq_testdata / "misc" / "small.jpg").read_bytes())
    assert result.quality < 50 and not result.matchable
    # Even with its own hash in the bank, it is refused rather than matched.
    matcher = Matcher([_bank_of(result.hash)])
    with pytest.raises(LowQualityImageError) as excinfo:
        matcher.match_image(result)
    assert excinfo.value.quality == result.quality


def test_flat_image_is_low_quality() -> None:
    flat = np.full((64, 64, 3), 128, dtype=np.uint8)
    result = hash_image(_png(flat))
    assert not result.matchable
    with pytest.raises(LowQualityImageError):
        result.query_hashes()


def test_modes_are_converted_consistently() -> None:
    rgb = _smooth(1, height=256)
    reference = hash_image(_png(rgb)).hash
    grey = np.asarray(Image.fromarray(rgb).convert("L"))
    grey_hash = hash_image(_png(grey)).hash
    # The grey fast path must agree exactly with Pillow's own L -> RGB conversion.
    grey_as_rgb = np.asarray(Image.fromarray(grey).convert("RGB"))
    assert grey_hash == hash_pixels(grey_as_rgb).hash
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, dtype=np.uint8)])
    assert hash_image(_png(rgba)).hash == reference
    # A palette image must be hashed by its colours, not by its palette indices.
    palette = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    out = io.BytesIO()
    palette.save(out, format="PNG")
    colour_hash = hash_pixels(np.asarray(palette.convert("RGB"))).hash
    index_hash = hash_pixels(np.dstack([np.asarray(palette)] * 3)).hash
    assert hash_image(out.getvalue()).hash == colour_hash
    assert colour_hash.distance(index_hash) > MATCH_DISTANCE_THRESHOLD


def test_dihedral_hashes_follow_pixel_transforms() -> None:
    rgb = _smooth(2)
    result = hash_pixels(rgb)
    assert len(result.dihedral) == 8 and result.dihedral[0] == result.hash
    transforms = {
        Dihedral.ROTATE_90: np.rot90(rgb, 1),
        Dihedral.ROTATE_180: np.rot90(rgb, 2),
        Dihedral.ROTATE_270: np.rot90(rgb, 3),
        Dihedral.FLIP_X: rgb[::-1],
        Dihedral.FLIP_Y: rgb[:, ::-1],
        Dihedral.FLIP_PLUS_1: rgb.transpose(1, 0, 2),
        Dihedral.FLIP_MINUS_1: np.rot90(rgb, 2).transpose(1, 0, 2),
    }
    for variant, pixels in transforms.items():
        transformed = hash_pixels(np.ascontiguousarray(pixels), dihedral=False).hash
        assert transformed.distance(result.dihedral[variant]) <= MATCH_DISTANCE_THRESHOLD, variant
        assert transformed.distance(result.hash) > MATCH_DISTANCE_THRESHOLD, variant


@pytest.mark.parametrize("data", [b"", b"not an image", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40])
def test_undecodable_bytes(data: bytes) -> None:
    with pytest.raises(UndecodableImageError):
        hash_image(data)


def test_pdq_hash_hex_and_distance() -> None:
    a = PdqHash.from_hex("f" * 64)
    b = PdqHash.from_hex("0" * 63 + "1")
    assert a.hex() == "f" * 64 and str(b) == "0" * 63 + "1"
    assert a.distance(b) == 255 and a.distance(a) == 0
    assert PdqHash.from_hex("AB" * 32) == PdqHash(bytes([0xAB]) * 32)
    for bad in ["f" * 63, "f" * 65, "g" * 64, " " + "f" * 63]:
        with pytest.raises(ValidationError):
            PdqHash.from_hex(bad)
    with pytest.raises(ValidationError):
        PdqHash(b"\x00" * 31)


def test_from_bits_packs_most_significant_first() -> None:
    bits = np.zeros(256, dtype=np.int64)
    bits[0] = 1
    bits[255] = 1
    assert PdqHash.from_bits(bits).hex() == "80" + "00" * 30 + "01"


def test_image_hash_rejects_inconsistent_dihedrals() -> None:
    h = PdqHash(b"\x01" * 32)
    with pytest.raises(ValidationError):
        ImageHash(h, 100, dihedral=(h,) * 7)
    with pytest.raises(ValidationError):
        ImageHash(h, 100, dihedral=(PdqHash(b"\x02" * 32),) + (h,) * 7)
    with pytest.raises(ValidationError):
        ImageHash(h, 101)
    with pytest.raises(ValidationError):
        ImageHash(h, 100, trimmed=(h,) * 8)  # trimmed orientations without the untrimmed ones
    with pytest.raises(ValidationError):
        ImageHash(h, 100, dihedral=(h,) * 8, trimmed=(h,) * 7)

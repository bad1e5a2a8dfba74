"""`vigil hashlist hash IMAGE`: an operator banks an image without writing Python."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from cli_runner import vigil
from PIL import Image

from vigil.safety.hashing.banks import parse_threatexchange_file
from vigil.safety.hashing.pdq import hash_for_bank, hash_image


def _png(path: Path, pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def test_prints_the_hash_as_an_import_line_and_the_quality(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    data = _png(tmp_path / "photo.png", rng.integers(0, 256, size=(128, 128, 3)))
    ran = vigil("hashlist", "hash", str(tmp_path / "photo.png"))
    assert ran.returncode == 0, ran.stderr
    expected = hash_image(data, dihedral=False)
    assert ran.stdout == f"pdq {expected.hash.hex()}\n"
    assert ran.stderr.startswith(f"quality {expected.quality} ")
    [entry] = parse_threatexchange_file(ran.stdout)  # the line is a bank import file as it is
    assert entry.hash == expected.hash


def test_a_flat_image_is_flagged_and_a_non_image_is_one_line(tmp_path: Path) -> None:
    _png(tmp_path / "flat.png", np.full((64, 64, 3), 128))
    flat = vigil("hashlist", "hash", str(tmp_path / "flat.png"))
    assert flat.returncode == 0 and "too low to bank" in flat.stderr
    (tmp_path / "notes.txt").write_text("not an image")
    bad = vigil("hashlist", "hash", str(tmp_path / "notes.txt"))
    assert bad.returncode == 1 and len(bad.stdout.strip().splitlines()) == 1


def test_a_silhouette_on_white_also_prints_its_trimmed_hash(tmp_path: Path) -> None:
    """A dark shape on a white margin: a copy framed in white trims to the shape, so the trimmed content's
    hash is printed as a second import line; `--plain-only` prints what other PDQ tools compute."""
    pixels = np.full((300, 400, 3), 255)
    y, x = np.mgrid[0:220, 0:330]
    pixels[40:260, 35:365] = np.where(((x - 165) / 160) ** 2 + ((y - 110) / 100) ** 2 < 1, 20, 255)[..., None]
    pixels[120:180, 100:300] = 255  # a gap, so the shape has inner detail
    data = _png(tmp_path / "shape.png", pixels)
    ran = vigil("hashlist", "hash", str(tmp_path / "shape.png"))
    assert ran.returncode == 0, ran.stderr
    banked = hash_for_bank(data)
    assert len(banked.variants) >= 1
    assert [e.hash for e in parse_threatexchange_file(ran.stdout)] == list(banked.all())
    assert "more for its trimmed content" in ran.stderr
    plain = vigil("hashlist", "hash", "--plain-only", str(tmp_path / "shape.png"))
    assert plain.stdout == f"pdq {hash_image(data, dihedral=False).hash.hex()}\n"

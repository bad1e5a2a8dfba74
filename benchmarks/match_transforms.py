"""How often an edited copy of a known image still matches, per kind of edit, before vs after.

The known images are the photo-like sample images that ship inside scikit-image (`skimage.data`, no
download), none of them in the PDQ reference set. Each is banked, then edited in one way, re-encoded, and
looked up at threshold 31:

- before: the bank holds each original's plain hash (as any PDQ tool computes it); the query's 8 dihedral
  hashes are derived from one downsample (`pdqhash.compute_dihedral`, the first `hash_image`);
- previous: the same plain-hash bank; the query hashed as on main before issue 12's both-sides
  normalisation: real orientations, the edge trim only (`trim_uniform_border`), small images' scaled-up
  hashes;
- after: the bank holds `hash_for_bank` (the plain hash plus the trimmed contents' and the small copy's
  hashes where they differ) and the query is `hash_image` now (also the `trim_surround` trim).

A query PDQ refuses (quality below 50: too small or too flat to hash) is a miss, reported with its size
and quality as the known limit "unhashable". Hashing cost is CPU time (`time.process_time`: the machine is
shared), decode included: per query for before/after, and per bank entry for the plain hash vs
`hash_for_bank`.

A false positive is a query matching a bank entry of a different image. Also reported: the closest any
query came to another image's banked hashes (bits), the margin left below the threshold. Prints a table and
one JSON line; exits non-zero if "after" has any false positive.

    .venv/bin/python benchmarks/match_transforms.py
"""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pdqhash
import skimage.data
from PIL import Image, ImageDraw, ImageFilter

from vigil.safety.hashing import borders, pdq
from vigil.safety.hashing.banks import Bank, BankEntry, BankKind, BankName, EntryId, Matcher
from vigil.safety.hashing.index import BruteForceIndex
from vigil.safety.hashing.pdq import (
    MATCH_DISTANCE_THRESHOLD,
    MIN_MATCH_QUALITY,
    BankHashes,
    ImageHash,
    PdqHash,
    hash_image,
    hash_pixels_for_bank,
)

# Excluded from the set, with the reason: these are not distinct images.
_DUPLICATES = {
    "chessboard_RGB.png": "the same chessboard as chessboard_GRAY.png",
    "motorcycle_right.png": "the other half of motorcycle_left.png's stereo pair (a near-duplicate)",
}
Edit = Callable[[Image.Image], Image.Image]


def _resize(scale: float) -> Edit:
    return lambda im: im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))))


def _crop(fraction: float) -> Edit:
    def crop(im: Image.Image) -> Image.Image:
        dx, dy = round(im.width * fraction / 2), round(im.height * fraction / 2)
        return im.crop((dx, dy, im.width - dx, im.height - dy))

    return crop


def _border(fraction: float, colour: tuple[int, int, int]) -> Edit:
    def border(im: Image.Image) -> Image.Image:
        pad = round(max(im.size) * fraction)
        canvas = Image.new("RGB", (im.width + 2 * pad, im.height + 2 * pad), colour)
        canvas.paste(im, (pad, pad))
        return canvas

    return border


def _letterbox(im: Image.Image) -> Image.Image:
    """Padded with black bars to a 16:9 frame (or 9:16 for a tall image), like a video still."""
    if im.width >= im.height:
        width, height = max(im.width, round(im.height * 16 / 9)), im.height
        height = max(height, round(width * 9 / 16))
    else:
        width, height = im.width, max(im.height, round(im.width * 16 / 9))
    canvas = Image.new("RGB", (width, height), (0, 0, 0))
    canvas.paste(im, ((width - im.width) // 2, (height - im.height) // 2))
    return canvas


def _watermark(im: Image.Image) -> Image.Image:
    overlay = im.convert("RGBA")
    layer = Image.new("RGBA", overlay.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    w, h = im.size
    draw.rectangle((int(w * 0.6), int(h * 0.85), int(w * 0.97), int(h * 0.96)), fill=(255, 255, 255, 110))
    draw.text((int(w * 0.62), int(h * 0.87)), "@someone  sample.example", fill=(0, 0, 0, 200))
    return Image.alpha_composite(overlay, layer).convert("RGB")


def _screenshot(im: Image.Image) -> Image.Image:
    """A phone-style screenshot: status bar, app header with text, the image on a white page, buttons."""
    width = 720
    scale = width / im.width
    shown = im.resize((width, max(1, round(im.height * scale))))
    height = shown.height + 360
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, width, 40), fill=(20, 20, 20))
    draw.text((16, 12), "12:41     5G  87%", fill=(255, 255, 255))
    draw.rectangle((0, 40, width, 120), fill=(245, 245, 245))
    draw.text((24, 70), "Some Person  -  2 h", fill=(30, 30, 30))
    canvas.paste(shown, (0, 160))
    for x in range(40, width, 170):
        draw.rectangle((x, height - 110, x + 90, height - 70), fill=(200, 200, 200))
    return canvas


EDITS: dict[str, Edit] = {
    "jpeg q50": lambda im: im,  # every query is JPEG-encoded; this one at quality 50
    "resize 50%": _resize(0.5),
    "resize 25%": _resize(0.25),
    "crop 10%": _crop(0.10),
    "crop 25%": _crop(0.25),
    "rotate 90": lambda im: im.transpose(Image.Transpose.ROTATE_90),
    "rotate 180": lambda im: im.transpose(Image.Transpose.ROTATE_180),
    "rotate 270": lambda im: im.transpose(Image.Transpose.ROTATE_270),
    "mirror left-right": lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    "mirror top-bottom": lambda im: im.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
    "transpose": lambda im: im.transpose(Image.Transpose.TRANSPOSE),
    "transverse": lambda im: im.transpose(Image.Transpose.TRANSVERSE),
    "rotate 5 deg": lambda im: im.rotate(5, resample=Image.Resampling.BICUBIC, expand=True),
    "rotate 15 deg": lambda im: im.rotate(15, resample=Image.Resampling.BICUBIC, expand=True),
    "border white 10%": _border(0.10, (255, 255, 255)),
    "border black 3%": _border(0.03, (0, 0, 0)),
    "letterbox 16:9": _letterbox,
    "blur r=2": lambda im: im.filter(ImageFilter.GaussianBlur(2)),
    "watermark": _watermark,
    "screenshot": _screenshot,
}
KNOWN_LIMITS = {
    "crop 10%": "PDQ is not crop-invariant",
    "crop 25%": "PDQ is not crop-invariant",
    "rotate 5 deg": "PDQ covers only the 8 dihedral symmetries",
    "rotate 15 deg": "PDQ covers only the 8 dihedral symmetries",
    "screenshot": "app chrome is not a uniform border",
    "watermark": "a large opaque overlay changes PDQ's low frequencies",
}


def _encode(im: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    im.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def _before(data: bytes) -> tuple[PdqHash, ...]:
    with Image.open(io.BytesIO(data)) as image:
        rgb = np.asarray(image.convert("RGB"))
    vectors, quality = pdqhash.compute_dihedral(rgb)
    if quality < MIN_MATCH_QUALITY:
        return ()  # refused as unhashable: a miss
    return tuple(PdqHash.from_bits(v) for v in vectors)


def _after(data: bytes) -> ImageHash:
    return hash_image(data)


def _previous(data: bytes, after: ImageHash) -> tuple[PdqHash, ...]:
    """The query as main hashed it before issue 12's second trim: `after` with the edge trim only."""
    if not after.matchable:
        return ()
    with Image.open(io.BytesIO(data)) as image:
        rgb = np.asarray(image.convert("RGB"))
    edge: tuple[PdqHash, ...] = ()
    content = (
        borders.trim_uniform_border(rgb) if borders.uniform_margins(pdq._reduced(rgb)) is not None else None
    )
    if content is not None:
        pixels = pdq._reduced(content)
        trimmed, quality = pdq._pdq(pixels)
        if quality >= MIN_MATCH_QUALITY:
            edge = pdq._orientations(pixels, trimmed)
    return after.dihedral + edge + after.rescaled


def _images() -> dict[str, Image.Image]:
    folder = Path(skimage.data.__file__).parent
    images: dict[str, Image.Image] = {}
    for path in sorted([*folder.glob("*.png"), *folder.glob("*.jpg")]):
        if path.name in _DUPLICATES:
            continue
        with Image.open(path) as image:
            rgb = image.convert("RGB")
        if hash_image(path.read_bytes(), dihedral=False).quality >= MIN_MATCH_QUALITY:
            images[path.stem] = rgb
    return images


def _matcher(banked: dict[str, tuple[PdqHash, ...]]) -> Matcher:
    """One bank; an image's several hashes are entries `name/0`, `name/1`... labelled with its name."""
    entries = tuple(
        BankEntry(EntryId(f"{name}/{i}"), h, labels=(name,))
        for name, hashes in banked.items()
        for i, h in enumerate(hashes)
    )
    return Matcher([Bank(BankName("known"), BankKind.NORMAL, entries)], index_factory=BruteForceIndex)


def _cpu_ms(samples: list[float]) -> dict[str, float]:
    ms = np.array(samples) * 1000
    return {
        "cpu_p50_ms": round(float(np.percentile(ms, 50)), 2),
        "cpu_p99_ms": round(float(np.percentile(ms, 99)), 2),
        "cpu_mean_ms": round(float(ms.mean()), 2),
    }


def main() -> int:
    images = _images()
    plain: dict[str, tuple[PdqHash, ...]] = {}
    banked: dict[str, BankHashes] = {}
    seconds: dict[str, list[float]] = {"before": [], "after": [], "bank_plain": [], "bank_after": []}
    for name, image in images.items():
        pixels = np.asarray(image)
        start = time.process_time()
        plain[name] = (pdq.hash_pixels(pixels, dihedral=False).hash,)
        seconds["bank_plain"].append(time.process_time() - start)
        start = time.process_time()
        banked[name] = hash_pixels_for_bank(pixels)
        seconds["bank_after"].append(time.process_time() - start)
    matchers = {
        "before": _matcher(plain),
        "previous": _matcher(plain),
        "after": _matcher({name: b.all() for name, b in banked.items()}),
    }
    paths = tuple(matchers)
    rates: dict[str, dict[str, float]] = {}
    misses: dict[str, dict[str, list[str]]] = {}
    unhashable: dict[str, list[str]] = {}
    false_positives = dict.fromkeys(paths, 0)
    closest_other = MATCH_DISTANCE_THRESHOLD * 8
    for edit_name, edit in EDITS.items():
        queries = {
            name: _encode(edit(image), 50 if edit_name == "jpeg q50" else 90)
            for name, image in images.items()
        }
        hits = dict.fromkeys(paths, 0)
        for name, data in queries.items():
            start = time.process_time()
            before = _before(data)
            seconds["before"].append(time.process_time() - start)
            start = time.process_time()
            after = _after(data)
            seconds["after"].append(time.process_time() - start)
            if not after.matchable:
                with Image.open(io.BytesIO(data)) as image:
                    size = f"{image.width}x{image.height}"
                unhashable.setdefault(edit_name, []).append(f"{name} ({size} px, quality {after.quality})")
            hashes = {
                "before": before,
                "previous": _previous(data, after),
                "after": after.query_hashes() if after.matchable else (),
            }
            for path in paths:
                found = {m.entry.labels[0] for m in matchers[path].match_hashes(hashes[path]).matches}
                hits[path] += name in found
                false_positives[path] += len(found - {name})
                if name not in found:
                    misses.setdefault(path, {}).setdefault(edit_name, []).append(name)
            closest_other = min(
                [
                    closest_other,
                    *(
                        q.distance(h)
                        for other, b in banked.items()
                        if other != name
                        for h in b.all()
                        for q in hashes["after"]
                    ),
                ]
            )
        rates[edit_name] = {path: hits[path] / len(queries) for path in paths}
    variants = {name: len(b.variants) for name, b in banked.items()}
    print(f"{len(images)} images from skimage.data; match rate at threshold 31 (before -> previous -> after)")
    for edit_name, rate in rates.items():
        notes = []
        if edit_name in KNOWN_LIMITS:
            notes.append(f"known PDQ limit: {KNOWN_LIMITS[edit_name]}")
        if edit_name in unhashable:
            notes.append("unhashable, PDQ quality < 50: " + ", ".join(unhashable[edit_name]))
        note = f"  ({'; '.join(notes)})" if notes else ""
        print(
            f"  {edit_name:18} {rate['before']:6.1%} -> {rate['previous']:6.1%} -> {rate['after']:6.1%}{note}"
        )
    print(
        f"  false positives    {false_positives['before']} -> {false_positives['previous']}"
        f" -> {false_positives['after']}; closest to another image: {closest_other} bits"
    )
    print(
        f"  banked hashes: {len(images)} plain -> {sum(variants.values()) + len(images)}"
        f" ({sum(1 for v in variants.values() if v)} images with variants)"
    )
    latency = {path: _cpu_ms(s) for path, s in seconds.items()}
    print(f"  hashing per query (CPU)  before {latency['before']}  after {latency['after']}")
    print(f"  hashing per bank entry (CPU)  plain {latency['bank_plain']}  after {latency['bank_after']}")
    print(
        json.dumps(
            {
                "images": sorted(images),
                "match_rate": rates,
                "false_positives": false_positives,
                "closest_other_image_bits": closest_other,
                "bank_variants": variants,
                "unhashable": unhashable,
                "known_limits": KNOWN_LIMITS,
                "hashing_latency": latency,
                "misses_previous": misses.get("previous", {}),
                "misses_after": misses.get("after", {}),
            }
        )
    )
    return 1 if false_positives["after"] else 0


if __name__ == "__main__":
    sys.exit(main())

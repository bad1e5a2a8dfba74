"""PDQ perceptual hashing of image bytes.

PDQ (Meta's photo hash) maps an image to 256 bits such that visually similar images have a small Hamming
distance, plus a quality score in 0..100 measuring how much gradient detail the image has. The matching rule
from the PDQ authors is: distance <= 31 *and* quality >= 50. A flat or tiny image has low quality, its hash is
mostly noise, and matching it would produce false positives, so such an image is refused as unhashable
(`LowQualityImageError`) instead of being compared.

Pixels are decoded with Pillow and hashed by the `pdqhash` binding of the reference C++ hasher, as
python-threatexchange does.

Looking an image up takes more than its one hash, because PDQ alone misses common edits:

- Rotations and mirrors. The reference hasher can derive the 8 dihedral hashes from one downsample by
  flipping DCT signs, but "flip of the hash" is not "hash of the flip": PDQ's 64x64 sampling grid is not
  symmetric, so for textured or small images the derived hash lands 30-130 bits from the hash of the
  really rotated image. The query's 8 orientations are therefore hashed from really transformed pixels.
- Borders and padding (letterboxing, a frame, a screenshot's uniform margin) move all of PDQ's low
  frequencies; an added border missed every time. Uniform borders are trimmed and the trimmed image's 8
  orientations are looked up as well (the untrimmed ones stay: the known image may have a border itself).
  Two trims (`vigil.safety.hashing.borders`): each side's uniform margin up to a clear edge
  (`trim_uniform_border`), and, when the four corners share one colour, the bounding box of everything
  that differs from it (`trim_surround`), which also catches content that fades into its background (a
  colour wheel on black).
- A border the colour of the picture's own margin (a silhouette on white, framed in white) is trimmed
  together with that margin, so the copy's trimmed hash is not the original's plain hash. Such images are
  normalised on both sides: `hash_for_bank` also banks the original's trimmed hashes (see below).

- Resizing down. PDQ low-passes with a box filter as wide as the image over 128 before sampling 64 x 64,
  so an image a few hundred pixels across is barely filtered and aliases: a 50% copy of a 512-pixel
  texture hashed 58 bits from the original, while the same copy scaled back up to 512 pixels (bicubic)
  hashes 2 bits away. An image under 683 pixels on its longer side is therefore also hashed scaled up to
  each of 256, 512 and 1024 pixels that is at least 1.5 times its size (the original orientation only;
  the plain hash still answers for a copy at the original's own size).

`hash_for_bank` gives the hashes to list for a known image: the plain hash (what any PDQ tool computes and
what outside lists hold), plus, where they differ from it, the hash of its content with each trim and of its
small copy (longer side 128 pixels, scaled back up as a query's would be): a 25% copy of a text page is
96 pixels wide and has lost the detail its plain hash aliased on, but lands near the banked small copy.

To keep this affordable the 7 transformed orientations and the trimmed variants are hashed from a copy
area-averaged by a whole factor to 512-1023 pixels on its longer side; PDQ itself averages down to
64 x 64, and on the reference and sample images the reduced copy hashes within 6 bits of the full-size one.
"""

from __future__ import annotations

import enum
import io
import warnings
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pdqhash
from PIL import Image

from vigil.errors import ValidationError
from vigil.safety.hashing.borders import surround_margins, trim_uniform_border, uniform_margins

__all__ = [
    "HASH_BITS",
    "HASH_BYTES",
    "MATCH_DISTANCE_THRESHOLD",
    "MAX_QUERY_HASHES",
    "MIN_MATCH_QUALITY",
    "BankHashes",
    "Dihedral",
    "ImageHash",
    "LowQualityImageError",
    "PdqHash",
    "UndecodableImageError",
    "UnhashableImageError",
    "hash_for_bank",
    "hash_image",
    "hash_pixels",
    "hash_pixels_for_bank",
    "orient",
]

HASH_BITS: Final = 256
HASH_BYTES: Final = HASH_BITS // 8
MATCH_DISTANCE_THRESHOLD: Final = 31
"""PDQ's recommended match radius (the reference implementation's "confident match" threshold)."""
MIN_MATCH_QUALITY: Final = 50
"""Below this quality the hash is not reliable enough to act on."""
# The sides a small image is also scaled up to (longer side), when at least _MIN_UPSCALE times its own.
_RESCALED_SIDES: Final = (256, 512, 1024)
_MIN_UPSCALE: Final = 1.5
MAX_QUERY_HASHES: Final = 3 * 8 + len(_RESCALED_SIDES)
"""The 8 orientations of an image, the 8 orientations of each of its (at most 2) trimmed copies, and a small
image's scaled-up copies."""

# The transformed orientations are hashed from a copy reduced to at least this many pixels on its longer side.
_ORIENTATION_SIDE: Final = 512
# `hash_for_bank`: a small copy's longer side, banked for images at least twice as large.
_SMALL_COPY_SIDE: Final = 128
# A banked variant within this many bits of one already banked adds nothing worth a list entry.
_DISTINCT_BANK_BITS: Final = 8

# Above this many pixels decoding is refused (Pillow raises DecompressionBombError at 2x its own
# limit; we set our own bound so the decision does not depend on a process-global Pillow setting).
_MAX_PIXELS: Final = 178_956_970

_DECODE_ERRORS: Final = (
    OSError,
    ValueError,
    SyntaxError,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
)
_HEX_DIGITS: Final = frozenset("0123456789abcdefABCDEF")
# Weights of bits 7..0 in a byte, to pack pdqhash's 0/1 vectors (most significant bit first).
_BIT_WEIGHTS: Final = np.array([128, 64, 32, 16, 8, 4, 2, 1], dtype=np.uint16)


class UnhashableImageError(ValidationError):
    """The image cannot be PDQ-hashed into something safe to match."""

    code = "unhashable_image"


class UndecodableImageError(UnhashableImageError):
    """The bytes are not an image Pillow can decode (corrupt, unsupported, or too large)."""

    code = "undecodable_image"


class LowQualityImageError(UnhashableImageError):
    """The image decoded but its PDQ quality is below `MIN_MATCH_QUALITY`: its hash must not be matched."""

    code = "low_quality_image"

    def __init__(self, quality: int) -> None:
        super().__init__(f"PDQ quality {quality} is below the matching minimum {MIN_MATCH_QUALITY}")
        self.quality = quality


@dataclass(frozen=True, slots=True, order=True)
class PdqHash:
    """256 PDQ bits, most significant first, as 32 bytes (the same layout as the usual 64-hex form)."""

    digest: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.digest, bytes) or len(self.digest) != HASH_BYTES:
            raise ValidationError(f"a PDQ hash is {HASH_BYTES} bytes")

    @classmethod
    def from_hex(cls, text: str) -> PdqHash:
        """Parse the 64-hex-digit form (either case). Raises `ValidationError` if malformed."""
        if len(text) != 2 * HASH_BYTES or not _HEX_DIGITS.issuperset(text):
            raise ValidationError(f"a PDQ hash is {2 * HASH_BYTES} hex digits, got {text[:80]!r}")
        return cls(bytes.fromhex(text))

    @classmethod
    def from_bits(cls, bits: npt.NDArray[np.integer]) -> PdqHash:
        """Pack a vector of 256 zeros and ones (pdqhash's output, most significant bit first)."""
        if bits.shape != (HASH_BITS,):
            raise ValidationError(f"expected {HASH_BITS} bits, got shape {bits.shape}")
        packed = (bits.reshape(HASH_BYTES, 8).astype(np.uint16) * _BIT_WEIGHTS).sum(axis=1)
        return cls(packed.astype(np.uint8).tobytes())

    def hex(self) -> str:
        return self.digest.hex()

    def distance(self, other: PdqHash) -> int:
        """Hamming distance: the number of differing bits (0..256)."""
        return (int.from_bytes(self.digest, "big") ^ int.from_bytes(other.digest, "big")).bit_count()

    def __str__(self) -> str:
        return self.hex()

    def __repr__(self) -> str:
        return f"PdqHash({self.hex()!r})"


class Dihedral(enum.IntEnum):
    """The 8 symmetries of a rectangle, in the order (and with the names) the reference hasher uses.

    `ImageHash.dihedral[member]` is the hash of the image transformed that way (`orient`); the geometric
    meanings below were checked against the reference images in tests.
    """

    ORIGINAL = 0
    ROTATE_90 = 1
    """Rotated a quarter turn counter-clockwise."""
    ROTATE_180 = 2
    ROTATE_270 = 3
    """Rotated a quarter turn clockwise."""
    FLIP_X = 4
    """Mirrored top to bottom (about the horizontal axis)."""
    FLIP_Y = 5
    """Mirrored left to right (about the vertical axis)."""
    FLIP_PLUS_1 = 6
    """Transposed (mirrored about the main diagonal)."""
    FLIP_MINUS_1 = 7
    """Mirrored about the anti-diagonal."""


@dataclass(frozen=True, slots=True)
class ImageHash:
    """The result of hashing one image: its hash, quality, and (optionally) its orientations' hashes.

    `dihedral[Dihedral.ORIGINAL] == hash` whenever `dihedral` is non-empty. `trimmed` holds the 8
    orientations of the image with its uniform border removed, 8 for each distinct trim (up to 2), or
    nothing when it has no such border. `rescaled` holds the hashes of a small image scaled up (original
    orientation), or nothing.
    """

    hash: PdqHash
    quality: int
    dihedral: tuple[PdqHash, ...] = ()
    trimmed: tuple[PdqHash, ...] = ()
    rescaled: tuple[PdqHash, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.quality <= 100:
            raise ValidationError(f"PDQ quality is 0..100, got {self.quality}")
        if self.dihedral and (len(self.dihedral) != len(Dihedral) or self.dihedral[0] != self.hash):
            raise ValidationError("dihedral hashes must be all 8, starting with the original")
        if self.trimmed and (
            len(self.trimmed) not in (len(Dihedral), 2 * len(Dihedral)) or not self.dihedral
        ):
            raise ValidationError("trimmed hashes come 8 per trim (1 or 2), alongside the 8 dihedral hashes")
        if len(self.rescaled) > len(_RESCALED_SIDES) or (self.rescaled and not self.dihedral):
            raise ValidationError(
                f"at most {len(_RESCALED_SIDES)} rescaled hashes, alongside the 8 dihedral hashes"
            )

    @property
    def matchable(self) -> bool:
        return self.quality >= MIN_MATCH_QUALITY

    def query_hashes(self) -> tuple[PdqHash, ...]:
        """The hashes to look up for this image: the 8 orientations, the 8 trimmed ones and the rescaled
        ones if computed, else just the hash. `query_variants` says what each position is.

        Raises `LowQualityImageError` if the image is below the matching quality, so that a caller
        cannot look up an unreliable hash by accident.
        """
        if not self.matchable:
            raise LowQualityImageError(self.quality)
        return (self.dihedral + self.trimmed + self.rescaled) or (self.hash,)

    def query_variants(self) -> tuple[tuple[Dihedral, bool], ...]:
        """For each of `query_hashes`, its orientation and whether it is of the trimmed image."""
        if not self.dihedral:
            return ((Dihedral.ORIGINAL, False),)
        return (
            *((d, False) for d in Dihedral),
            *((Dihedral(i % len(Dihedral)), True) for i in range(len(self.trimmed))),
            *((Dihedral.ORIGINAL, False) for _ in self.rescaled),
        )


def _decode(data: bytes) -> npt.NDArray[np.uint8]:
    """Decode image bytes to an H x W x 3 uint8 RGB array (H, W >= 1)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.width * image.height > _MAX_PIXELS:
                    raise UndecodableImageError(f"image of {image.width}x{image.height} pixels is too large")
                # Only the first frame of an animation is hashed, like the reference tools do.
                # Grey images are widened here rather than via convert("RGB") to save a full-size copy
                # of the colour conversion; the luma PDQ computes is the same.
                if image.mode == "L":
                    grey = np.asarray(image, dtype=np.uint8)
                    return np.repeat(grey[:, :, np.newaxis], 3, axis=2)
                if image.mode == "RGB":
                    return np.asarray(image, dtype=np.uint8)
                # Palette, CMYK, 16-bit, alpha... all go through Pillow's own conversion: hashing
                # palette indices or raw CMYK as if they were RGB would give a meaningless hash.
                return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except UndecodableImageError:
        raise
    except _DECODE_ERRORS as exc:
        raise UndecodableImageError(f"cannot decode image: {exc}") from exc


def orient(rgb: npt.NDArray[np.uint8], variant: Dihedral) -> npt.NDArray[np.uint8]:
    """The pixels transformed by `variant` (a view where possible)."""
    match variant:
        case Dihedral.ORIGINAL:
            return rgb
        case Dihedral.ROTATE_90:
            return np.rot90(rgb, 1)
        case Dihedral.ROTATE_180:
            return np.rot90(rgb, 2)
        case Dihedral.ROTATE_270:
            return np.rot90(rgb, 3)
        case Dihedral.FLIP_X:
            return rgb[::-1]
        case Dihedral.FLIP_Y:
            return rgb[:, ::-1]
        case Dihedral.FLIP_PLUS_1:
            return rgb.transpose(1, 0, 2)
        case Dihedral.FLIP_MINUS_1:
            return np.rot90(rgb, 2).transpose(1, 0, 2)


def _pdq(rgb: npt.NDArray[np.uint8]) -> tuple[PdqHash, int]:
    vector, quality = pdqhash.compute(np.ascontiguousarray(rgb))
    return PdqHash.from_bits(vector), int(quality)


def _reduction_factor(rgb: npt.NDArray[np.uint8]) -> int:
    factor = max(rgb.shape[:2]) // _ORIENTATION_SIDE
    return factor if factor >= 2 else 1


def _reduced(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    # By a whole factor only: a fractional resize (600 -> 512 pixels) moves PDQ's sampling phase and cost
    # up to 18 bits on the sample images, a whole-factor area average at most 6.
    factor = _reduction_factor(rgb)
    if factor == 1:
        return rgb
    return np.asarray(Image.fromarray(np.ascontiguousarray(rgb[:, :, :3])).reduce(factor), dtype=np.uint8)


def _orientations(rgb: npt.NDArray[np.uint8], original: PdqHash) -> tuple[PdqHash, ...]:
    return (original, *(_pdq(orient(rgb, variant))[0] for variant in list(Dihedral)[1:]))


def _trimmed_contents(
    rgb: npt.NDArray[np.uint8], reduced: npt.NDArray[np.uint8]
) -> list[npt.NDArray[np.uint8]]:
    """The image's content without its uniform border, by each trim that finds one, at full size."""
    # The reduced copy says cheaply whether there is a border at all (most photos have none). Where there
    # is, it is trimmed at full size and the content reduced by its own factor: trimmed after reducing by
    # the bordered image's factor, a letterboxed star field lost half its pillarbox to the averaging and
    # was left 425 pixels wide, aliasing 112 bits from its original.
    contents = []
    if uniform_margins(reduced) is not None:
        edge = trim_uniform_border(rgb)
        if edge is not None:
            contents.append(edge)
    surround = surround_margins(reduced)
    if surround is not None:
        # Found on the reduced copy (a full-size mask of a phone photo costs more than its hash) and
        # scaled back: within one reduction factor, under 0.2% of a side.
        factor = _reduction_factor(rgb)
        top, bottom, left, right = (side * factor for side in surround)
        contents.append(rgb[top : rgb.shape[0] - bottom, left : rgb.shape[1] - right])
    return contents


def _content_hashes(
    rgb: npt.NDArray[np.uint8], reduced: npt.NDArray[np.uint8]
) -> list[tuple[PdqHash, npt.NDArray[np.uint8]]]:
    """For each distinct trim: the trimmed content's hash and its reduced pixels. What is left inside a
    border counts only if it is detailed enough on its own."""
    found: list[tuple[PdqHash, npt.NDArray[np.uint8]]] = []
    for content in _trimmed_contents(rgb, reduced):
        pixels = _reduced(content)
        trimmed, quality = _pdq(pixels)
        if quality >= MIN_MATCH_QUALITY and all(trimmed.distance(h) > _DISTINCT_BANK_BITS for h, _ in found):
            found.append((trimmed, pixels))
    return found


def _trimmed_orientations(rgb: npt.NDArray[np.uint8], reduced: npt.NDArray[np.uint8]) -> tuple[PdqHash, ...]:
    return tuple(
        h for trimmed, pixels in _content_hashes(rgb, reduced) for h in _orientations(pixels, trimmed)
    )


def _scaled_to(rgb: npt.NDArray[np.uint8], side: int) -> npt.NDArray[np.uint8]:
    height, width = rgb.shape[:2]
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    image = Image.fromarray(np.ascontiguousarray(rgb)).resize(size, Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.uint8)


def _rescaled(rgb: npt.NDArray[np.uint8]) -> tuple[PdqHash, ...]:
    longer = max(rgb.shape[:2])
    # Bicubic, to any size: upscaling adds no aliasing of its own, so unlike a reduction a fractional
    # factor does not hurt (the sample images were closer to their originals at 256/512/1024 exactly).
    return tuple(_pdq(_scaled_to(rgb, side))[0] for side in _RESCALED_SIDES if side >= _MIN_UPSCALE * longer)


def hash_pixels(rgb: npt.NDArray[np.uint8], *, dihedral: bool = True) -> ImageHash:
    """PDQ-hash an H x W x 3 uint8 RGB array. Raises `ValidationError` on a wrong shape or dtype.

    With `dihedral`, also hashes the image's 8 real orientations, if it has a uniform border the 8
    orientations of the trimmed image, and if it is small its scaled-up copies (see the module
    docstring), unless the image is below the
    matching quality; `hash` is always the plain PDQ hash of the full-size pixels, the one other PDQ
    tools compute.
    """
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] < 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ValidationError(f"expected an H x W x 3 uint8 array, got {rgb.dtype} {rgb.shape}")
    plain, quality = _pdq(rgb[:, :, :3])
    if not dihedral or quality < MIN_MATCH_QUALITY:
        return ImageHash(hash=plain, quality=quality)  # an unmatchable image needs no more hashes
    reduced = _reduced(rgb[:, :, :3])
    return ImageHash(
        hash=plain,
        quality=quality,
        dihedral=_orientations(reduced, original=plain),
        trimmed=_trimmed_orientations(rgb[:, :, :3], reduced),
        rescaled=_rescaled(rgb[:, :, :3]),
    )


def hash_image(data: bytes, *, dihedral: bool = True) -> ImageHash:
    """PDQ-hash encoded image bytes (any format Pillow reads; first frame only).

    Always returns the hash and quality, even for a low-quality image; matching refuses those
    (see `ImageHash.query_hashes`). Raises `UndecodableImageError` if the bytes are not a readable image.
    """
    return hash_pixels(_decode(data), dihedral=dihedral)


@dataclass(frozen=True, slots=True)
class BankHashes:
    """The hashes to list for one known image (`hash_for_bank`): `hash` is its plain PDQ hash, the one
    any PDQ tool computes; `variants` are the hashes of its normalised copies that differ from it."""

    hash: PdqHash
    quality: int
    variants: tuple[PdqHash, ...] = ()

    @property
    def matchable(self) -> bool:
        return self.quality >= MIN_MATCH_QUALITY

    def all(self) -> tuple[PdqHash, ...]:
        return (self.hash, *self.variants)


def hash_for_bank(data: bytes) -> BankHashes:
    """`hash_pixels_for_bank` of encoded image bytes (first frame only). Raises `UndecodableImageError` if
    the bytes are not a readable image."""
    return hash_pixels_for_bank(_decode(data))


def hash_pixels_for_bank(rgb: npt.NDArray[np.uint8]) -> BankHashes:
    """The hashes to bank for a known image given as H x W x 3 uint8 RGB pixels: its plain hash and, each
    only when it is matchable and more than `_DISTINCT_BANK_BITS` from every hash already kept, its content
    with each trim (`trim_uniform_border`, `trim_surround`) and its small copy (longer side
    `_SMALL_COPY_SIDE`, for images at least twice that, scaled up as a query's rescaled hash is).

    A query's trimmed hashes meet the trimmed variants whatever frame the copy got, and a tiny copy's
    rescaled hashes meet the small copy. An image below the matching quality gets no variants (it must not
    be banked at all). Raises `ValidationError` on a wrong shape or dtype.
    """
    plain = hash_pixels(rgb, dihedral=False)
    if not plain.matchable:
        return BankHashes(plain.hash, plain.quality)
    pixels = rgb[:, :, :3]
    candidates = [trimmed for trimmed, _ in _content_hashes(pixels, _reduced(pixels))]
    if max(pixels.shape[:2]) >= 2 * _SMALL_COPY_SIDE:
        small, quality = _pdq(_scaled_to(_scaled_to(pixels, _SMALL_COPY_SIDE), _RESCALED_SIDES[-1]))
        if quality >= MIN_MATCH_QUALITY:
            candidates.append(small)
    kept = [plain.hash]
    for candidate in candidates:
        if all(candidate.distance(h) > _DISTINCT_BANK_BITS for h in kept):
            kept.append(candidate)
    return BankHashes(plain.hash, plain.quality, tuple(kept[1:]))

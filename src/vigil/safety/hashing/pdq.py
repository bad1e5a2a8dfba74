"""PDQ perceptual hashing of image bytes.

PDQ (Meta's photo hash) maps an image to 256 bits such that visually similar images have a small Hamming
distance, plus a quality score in 0..100 measuring how much gradient detail the image has. The matching rule
from the PDQ authors is: distance <= 31 *and* quality >= 50. A flat or tiny image has low quality, its hash is
mostly noise, and matching it would produce false positives, so such an image is refused as unhashable
(`LowQualityImageError`) instead of being compared.

Pixels are decoded with Pillow and hashed by the `pdqhash` binding of the reference C++ hasher, as
python-threatexchange does. The 8 dihedral hashes (rotations and flips) come from the same pass over the
pixels, so catching a rotated or mirrored copy of a known image costs almost nothing extra.
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

__all__ = [
    "HASH_BITS",
    "HASH_BYTES",
    "MATCH_DISTANCE_THRESHOLD",
    "MIN_MATCH_QUALITY",
    "Dihedral",
    "ImageHash",
    "LowQualityImageError",
    "PdqHash",
    "UndecodableImageError",
    "UnhashableImageError",
    "hash_image",
    "hash_pixels",
]

HASH_BITS: Final = 256
HASH_BYTES: Final = HASH_BITS // 8
MATCH_DISTANCE_THRESHOLD: Final = 31
"""PDQ's recommended match radius (the reference implementation's "confident match" threshold)."""
MIN_MATCH_QUALITY: Final = 50
"""Below this quality the hash is not reliable enough to act on."""

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

    Each member's hash is (up to resampling noise) the hash of the image transformed that way; the
    geometric meanings below were checked against the reference images in tests.
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
    """The result of hashing one image: its hash, quality, and (optionally) all 8 dihedral hashes.

    `dihedral[Dihedral.ORIGINAL] == hash` whenever `dihedral` is non-empty.
    """

    hash: PdqHash
    quality: int
    dihedral: tuple[PdqHash, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.quality <= 100:
            raise ValidationError(f"PDQ quality is 0..100, got {self.quality}")
        if self.dihedral and (len(self.dihedral) != len(Dihedral) or self.dihedral[0] != self.hash):
            raise ValidationError("dihedral hashes must be all 8, starting with the original")

    @property
    def matchable(self) -> bool:
        return self.quality >= MIN_MATCH_QUALITY

    def query_hashes(self) -> tuple[PdqHash, ...]:
        """The hashes to look up for this image: all dihedral variants if computed, else just the hash.

        Raises `LowQualityImageError` if the image is below the matching quality, so that a caller
        cannot look up an unreliable hash by accident.
        """
        if not self.matchable:
            raise LowQualityImageError(self.quality)
        return self.dihedral or (self.hash,)


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


def hash_pixels(rgb: npt.NDArray[np.uint8], *, dihedral: bool = True) -> ImageHash:
    """PDQ-hash an H x W x 3 uint8 RGB array. Raises `ValidationError` on a wrong shape or dtype."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] < 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ValidationError(f"expected an H x W x 3 uint8 array, got {rgb.dtype} {rgb.shape}")
    if dihedral:
        vectors, quality = pdqhash.compute_dihedral(rgb)
        hashes = tuple(PdqHash.from_bits(v) for v in vectors)
        return ImageHash(hash=hashes[0], quality=int(quality), dihedral=hashes)
    vector, quality = pdqhash.compute(rgb)
    return ImageHash(hash=PdqHash.from_bits(vector), quality=int(quality))


def hash_image(data: bytes, *, dihedral: bool = True) -> ImageHash:
    """PDQ-hash encoded image bytes (any format Pillow reads; first frame only).

    Always returns the hash and quality, even for a low-quality image; matching refuses those
    (see `ImageHash.query_hashes`). Raises `UndecodableImageError` if the bytes are not a readable image.
    """
    return hash_pixels(_decode(data), dihedral=dihedral)

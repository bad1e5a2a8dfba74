"""Trimming the uniform surround of an image before hashing it (`vigil.safety.hashing.pdq`).

A border or padding (letterboxing, a frame, a screenshot's margin) moves all of PDQ's low frequencies, so
an image is also looked up (and banked) with its border cut off. Two trims: each side's uniform margin up
to a clear edge (`trim_uniform_border`), and, when the four corners share one colour, the bounding box of
everything that differs from it (`trim_surround`). Pure functions of H x W x 3 uint8 RGB pixels.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["surround_margins", "trim_surround", "trim_uniform_border", "uniform_margins"]

# A row or column is "uniform" when its standard deviation (averaged over the channels) is within this many
# levels (JPEG ringing next to a hard edge stays under 9; a line crossing content, even a photo's smooth
# background, is above 15) and its mean within this many levels of the outermost line's.
_BORDER_SPREAD: Final = 12
# ...and its brightest and darkest pixels (averaged over the channels) within this many levels: ringing
# reaches about 50, while stars on a night sky or the rim of a round photo on black go well past it.
_BORDER_RANGE: Final = 64
_BORDER_DRIFT: Final = 12
_BORDER_SAMPLES: Final = 128
_EDGE_LINES: Final = 3
# Borders thinner than this fraction of a side change PDQ too little to be worth a second lookup.
_MIN_BORDER_FRACTION: Final = 0.005
# Content left after trimming must be at least this fraction of each side, else the "border" was the image.
_MIN_CONTENT_FRACTION: Final = 0.2

# `trim_surround`: a pixel is background when each channel is within this many levels of the corners'
# colour (JPEG noise on a flat border stays under 8; the fading rim of a colour wheel crosses it within a
# few pixels, at the same place in the original and in a bordered copy).
_SURROUND_TOLERANCE: Final = 16
_CORNER: Final = 3


def _uniform_run(lines: npt.NDArray[np.float32], minimum: int) -> int:
    """How many leading lines (axis 0 of lines x samples x 3) are uniform and the colour of the first."""
    means = lines.mean(axis=1)
    spread = lines.std(axis=1).mean(axis=1)
    extent = (lines.max(axis=1) - lines.min(axis=1)).mean(axis=1)
    drift = np.abs(means - means[0]).max(axis=1)
    uniform = (spread <= _BORDER_SPREAD) & (extent <= _BORDER_RANGE) & (drift <= _BORDER_DRIFT)
    if uniform.all():
        return len(uniform)
    run = int(np.argmin(uniform))
    # A margin ends at an edge: within a few lines (JPEG ringing blurs it) comes a busy line or a clearly
    # different colour. A smooth gradient drifts out of tolerance a small step at a time: content.
    after = slice(run, run + _EDGE_LINES)
    step = float(np.abs(means[after] - means[run - 1]).max()) if run else 0.0
    at_edge = bool((spread[after] > _BORDER_SPREAD).any()) or step > _BORDER_DRIFT
    return run if run >= minimum and at_edge else 0


def _border_widths(rgb: npt.NDArray[np.uint8], min_rows: int, min_cols: int) -> tuple[int, int, int, int]:
    """Widths of the uniform top, bottom, left and right margins of `rgb`."""
    height, width = rgb.shape[:2]
    # Every row and column is tested, each on about _BORDER_SAMPLES of its pixels: a border is uniform
    # along its whole length, so a sample shows content crossing it; the full scan cost more than a hash.
    rows = rgb[:, :: max(1, width // _BORDER_SAMPLES)].astype(np.float32)
    cols = rgb[:: max(1, height // _BORDER_SAMPLES)].transpose(1, 0, 2).astype(np.float32)
    return (
        _uniform_run(rows, min_rows),
        _uniform_run(rows[::-1], min_rows),
        _uniform_run(cols, min_cols),
        _uniform_run(cols[::-1], min_cols),
    )


def trim_uniform_border(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8] | None:
    """The image without the uniform margin on any of its sides (each side its own colour), or None when
    there is no margin worth trimming or removing it would leave too little (a near-flat image)."""
    margins = uniform_margins(rgb)
    if margins is None:
        return None
    top, bottom, left, right = margins
    return rgb[top : rgb.shape[0] - bottom, left : rgb.shape[1] - right]


def uniform_margins(rgb: npt.NDArray[np.uint8]) -> tuple[int, int, int, int] | None:
    """`trim_uniform_border`'s top, bottom, left and right margins, or None."""
    height, width = rgb.shape[:2]
    min_rows = max(2, round(height * _MIN_BORDER_FRACTION))
    min_cols = max(2, round(width * _MIN_BORDER_FRACTION))
    # One round only: trimming again inside the result would eat the image's own uniform areas (a sky,
    # a plain backdrop) once a pillarbox is gone, which costs more matches than the rare L-shaped frame
    # of two colours that a second round would catch.
    top, bottom, left, right = _border_widths(rgb, min_rows, min_cols)
    if not top + bottom + left + right:
        return None
    rows, cols = height - top - bottom, width - left - right
    if rows < height * _MIN_CONTENT_FRACTION or cols < width * _MIN_CONTENT_FRACTION:
        return None
    return top, bottom, left, right


def trim_surround(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8] | None:
    """The bounding box of everything that differs from the colour of the image's four corners, or None
    when the corners do not share one colour, nothing is trimmed, or too little would be left.

    Unlike `trim_uniform_border` it needs no edge, so content fading into its background (a vignette, a
    colour wheel on black) is cut where it crosses the tolerance, in the original and in a framed copy alike.
    """
    margins = surround_margins(rgb)
    if margins is None:
        return None
    top, bottom, left, right = margins
    return rgb[top : rgb.shape[0] - bottom, left : rgb.shape[1] - right]


def surround_margins(rgb: npt.NDArray[np.uint8]) -> tuple[int, int, int, int] | None:
    """`trim_surround`'s top, bottom, left and right margins, or None."""
    height, width = rgb.shape[:2]
    if min(height, width) < 4 * _CORNER:
        return None
    c = _CORNER
    corners = (
        np.stack([rgb[:c, :c], rgb[:c, -c:], rgb[-c:, :c], rgb[-c:, -c:]]).reshape(4, -1, 3).astype(np.int16)
    )
    background = np.median(corners.reshape(-1, 3), axis=0)
    if (np.abs(corners - background).max(axis=2) > _SURROUND_TOLERANCE).any():
        return None
    content = (np.abs(rgb.astype(np.int16) - background) > _SURROUND_TOLERANCE).any(axis=2)
    rows = np.flatnonzero(content.any(axis=1))
    cols = np.flatnonzero(content.any(axis=0))
    if not rows.size:
        return None
    top, bottom = int(rows[0]), height - 1 - int(rows[-1])
    left, right = int(cols[0]), width - 1 - int(cols[-1])
    if max(top, bottom) < height * _MIN_BORDER_FRACTION and max(left, right) < width * _MIN_BORDER_FRACTION:
        return None
    if (
        height - top - bottom < height * _MIN_CONTENT_FRACTION
        or width - left - right < width * _MIN_CONTENT_FRACTION
    ):
        return None
    return top, bottom, left, right

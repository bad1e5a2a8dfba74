"""On-device nudity scoring for the sensitive-image warnings (issue 14).

The model is NudeNet 3.4's `320n.onnx` detector (a YOLOv8n exported to ONNX), which ships inside the
`nudenet` wheel: nothing is downloaded at run time. It runs on the CPU with onnxruntime. We read the file
from the installed package and do our own pre/post-processing with Pillow and numpy, so opencv (a
dependency of nudenet's own wrapper) is never imported.

Licence: the wheel's METADATA says MIT, but the LICENSE file it carries (and the upstream repository) is
the GNU AGPL v3. We therefore keep it an optional extra (`pip install 'vigil[nudity]'`), loaded lazily;
see docs/app.md for what distributing Vigil with it means. Without the extra, `load_classifier` returns
None and the app says that the check is unavailable.

The score of an image is the highest confidence the detector gives any *exposed* intimate body part
(breasts, genitalia, buttocks, anus); covered parts, faces, feet, belly and armpits do not count. Nothing
about the check ever leaves the device.
"""

from __future__ import annotations

import importlib.resources
import io
import threading
from dataclasses import dataclass
from typing import Any, Final, Protocol

__all__ = [
    "DEFAULT_THRESHOLD",
    "EXPOSED_LABELS",
    "LABELS",
    "ImageScorer",
    "NudityClassifier",
    "NudityScore",
    "load_classifier",
]

# NudeNet 3.x output classes, in the model's order.
LABELS: Final = (
    "FEMALE_GENITALIA_COVERED",
    "FACE_FEMALE",
    "BUTTOCKS_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_BREAST_EXPOSED",
    "ANUS_EXPOSED",
    "FEET_EXPOSED",
    "BELLY_COVERED",
    "FEET_COVERED",
    "ARMPITS_COVERED",
    "ARMPITS_EXPOSED",
    "FACE_MALE",
    "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED",
    "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
)
EXPOSED_LABELS: Final = frozenset(
    {
        "BUTTOCKS_EXPOSED",
        "FEMALE_BREAST_EXPOSED",
        "FEMALE_GENITALIA_EXPOSED",
        "ANUS_EXPOSED",
        "MALE_GENITALIA_EXPOSED",
    }
)
_EXPOSED_COLUMNS: Final = tuple(i for i, label in enumerate(LABELS) if label in EXPOSED_LABELS)
# NudeNet's own detection cut-off is 0.2 for any class; we flag from 0.45 on an exposed part (measured
# false-positive rate on ordinary images in BENCHMARKS.md). Users can move it in the app's settings.
DEFAULT_THRESHOLD: Final = 0.45
INPUT_SIZE: Final = 320
MAX_PIXELS: Final = 40_000_000  # refuse decompression bombs before decoding


@dataclass(frozen=True, slots=True)
class NudityScore:
    score: float  # 0..1, the highest confidence of an exposed intimate part
    label: str | None  # which part, when any was seen at all

    def flagged(self, threshold: float) -> bool:
        return self.score >= threshold


class ImageScorer(Protocol):
    def score(self, data: bytes) -> NudityScore: ...


class NudityClassifier:
    """Scores encoded images (PNG, JPEG, ...). Thread-safe; one ONNX session per instance."""

    def __init__(self, model: bytes) -> None:
        import onnxruntime  # the optional extra: imported only when the classifier is built

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # a small model: one thread is fast and leaves the other core free
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            model, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name
        self._lock = threading.Lock()

    def score(self, data: bytes) -> NudityScore:
        """Raises ValueError for data that is not a decodable image."""
        import numpy as np

        tensor = _preprocess(data)
        with self._lock:
            (output,) = self._session.run(None, {self._input: tensor})[:1]
        rows = np.asarray(output)[0].T  # (anchors, 4 box values + one score per class)
        exposed = rows[:, [4 + i for i in _EXPOSED_COLUMNS]]
        best = np.unravel_index(int(np.argmax(exposed)), exposed.shape)
        value = float(exposed[best])
        label = LABELS[_EXPOSED_COLUMNS[int(best[1])]] if value >= 0.05 else None
        return NudityScore(round(value, 4), label)


def _preprocess(data: bytes) -> Any:
    """As NudeNet: pad to a square at the bottom/right with black, resize to 320, RGB scaled to 0..1, NCHW."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.width * opened.height > MAX_PIXELS:
                raise ValueError("the image is too large to check")
            image = opened.convert("RGB")
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"not a decodable image: {error}") from None
    side = max(image.size)
    square = Image.new("RGB", (side, side))
    square.paste(image, (0, 0))
    resized = square.resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BILINEAR)
    array = np.asarray(resized, dtype=np.float32) / 255.0
    return array.transpose(2, 0, 1)[np.newaxis, ...].copy()


_loaded: dict[str, NudityClassifier | None] = {}
_load_lock = threading.Lock()


def load_classifier() -> NudityClassifier | None:
    """The classifier from the installed `nudenet` wheel, built once per process; None when the optional
    extra (`vigil[nudity]`: nudenet + onnxruntime) is not installed."""
    with _load_lock:
        if "model" not in _loaded:
            try:
                model = importlib.resources.files("nudenet").joinpath("320n.onnx").read_bytes()
                _loaded["model"] = NudityClassifier(model)
            except (ImportError, FileNotFoundError):
                _loaded["model"] = None
        return _loaded["model"]

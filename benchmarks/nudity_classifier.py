"""The app's on-device nudity classifier (NudeNet 320n ONNX, vigil.app.nudity) on ordinary images: its
false-positive rate at several thresholds and its latency, against PDQ hashing of the same images (the
on-device check every received image already gets) as the baseline in the same run.

Ordinary images: the PDQ reference photos (VIGIL_PDQ_TESTDATA, default ../shared/testdata/pdq: a bridge in
many edits, labelme street and room scenes, misc), the sample photos scikit-learn ships (china.jpg,
flower.jpg), and of each its four corner crops and a 50% downscale (ordinary re-framings a phone makes).
None shows nudity, so every flag is a false positive. No explicit images are used: the true-positive rate
is not measured here (see docs/app.md for what NudeNet publishes).

Prints one JSON line.

    .venv/bin/python benchmarks/nudity_classifier.py
    .venv/bin/python benchmarks/nudity_classifier.py --rounds 3
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import time
from pathlib import Path

from PIL import Image

from vigil.app.nudity import DEFAULT_THRESHOLD, load_classifier
from vigil.safety.hashing.pdq import hash_image

THRESHOLDS = (0.1, 0.2, 0.3, DEFAULT_THRESHOLD, 0.6)


def _originals() -> dict[str, bytes]:
    default = Path(__file__).resolve().parents[1].parent / "shared" / "testdata" / "pdq"
    root = Path(os.environ.get("VIGIL_PDQ_TESTDATA", default))
    found = {
        f"pdq/{p.relative_to(root)}": p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.suffix.lower() in {".jpg", ".jpeg", ".png"}
    }
    import sklearn.datasets

    samples = Path(sklearn.datasets.__file__).parent / "images"
    found.update({f"sklearn/{p.name}": p.read_bytes() for p in sorted(samples.glob("*.jpg"))})
    return found


def _variants(name: str, data: bytes) -> dict[str, bytes]:
    """The image, its four corner crops (60% of each side) and a 50% downscale, as JPEG."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    w, h = image.size
    cw, ch = int(w * 0.6), int(h * 0.6)
    boxes = {
        "tl": (0, 0, cw, ch),
        "tr": (w - cw, 0, w, ch),
        "bl": (0, h - ch, cw, h),
        "br": (w - cw, h - ch, w, h),
    }
    out = {name: data}
    for label, box in boxes.items():
        out[f"{name}#{label}"] = _jpeg(image.crop(box))
    out[f"{name}#half"] = _jpeg(image.resize((max(1, w // 2), max(1, h // 2))))
    return out


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=1, help="Timing rounds over every image.")
    args = parser.parse_args()

    started = time.perf_counter()
    classifier = load_classifier()
    if classifier is None:
        raise SystemExit("install the nudity extra: pip install -e '.[nudity]'")
    load_s = time.perf_counter() - started
    images: dict[str, bytes] = {}
    for name, data in _originals().items():
        images.update(_variants(name, data))

    scores = {name: classifier.score(data) for name, data in images.items()}  # warm-up and the scores
    classify_ms: list[float] = []
    pdq_ms: list[float] = []
    for _ in range(args.rounds):
        for data in images.values():
            t0 = time.perf_counter()
            classifier.score(data)
            t1 = time.perf_counter()
            hash_image(data)
            t2 = time.perf_counter()
            classify_ms.append((t1 - t0) * 1000)
            pdq_ms.append((t2 - t1) * 1000)

    def p95(values: list[float]) -> float:
        return sorted(values)[int(0.95 * (len(values) - 1))]

    top = sorted(scores.items(), key=lambda item: -item[1].score)[:5]
    print(
        json.dumps(
            {
                "benchmark": "nudity_classifier",
                "model": "nudenet 3.4.2 320n.onnx (onnxruntime CPU, 1 thread)",
                "images": len(images),
                "originals": len(images) // 6,
                "false_positive_rate": {
                    str(t): round(sum(s.flagged(t) for s in scores.values()) / len(scores), 4)
                    for t in THRESHOLDS
                },
                "default_threshold": DEFAULT_THRESHOLD,
                "max_score": round(max(s.score for s in scores.values()), 4),
                "highest": [[name, s.score, s.label] for name, s in top],
                "model_load_s": round(load_s, 3),
                "classify_ms_median": round(statistics.median(classify_ms), 2),
                "classify_ms_p95": round(p95(classify_ms), 2),
                "baseline_pdq_hash_ms_median": round(statistics.median(pdq_ms), 2),
                "classify_over_pdq_ratio": round(
                    statistics.median(classify_ms) / statistics.median(pdq_ms), 2
                ),
            }
        )
    )


if __name__ == "__main__":
    main()

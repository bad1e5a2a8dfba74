"""The on-device nudity classifier (NudeNet's ONNX model from the installed wheel, run by onnxruntime):
ordinary pictures score far below the default threshold, bad input is refused, scoring is deterministic."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image

from vigil.app.nudity import DEFAULT_THRESHOLD, load_classifier


def _png(color: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


def test_the_model_ships_in_the_installed_package_and_scores_plain_images_low() -> None:
    classifier = load_classifier()
    assert classifier is not None, "nudenet and onnxruntime are in the dev extra"
    assert load_classifier() is classifier  # built once per process
    for color in ((255, 255, 255), (0, 0, 0), (30, 120, 200)):
        result = classifier.score(_png(color))
        assert 0.0 <= result.score < DEFAULT_THRESHOLD
        assert not result.flagged(DEFAULT_THRESHOLD)
    first = classifier.score(_png((200, 150, 120), (300, 200)))
    assert classifier.score(_png((200, 150, 120), (300, 200))) == first


def test_not_an_image_is_a_value_error() -> None:
    classifier = load_classifier()
    assert classifier is not None
    with pytest.raises(ValueError, match="not a decodable image"):
        classifier.score(b"definitely not a picture")


def test_pdq_reference_photos_are_not_flagged_at_the_default_threshold() -> None:
    folder = Path(os.environ.get("VIGIL_PDQ_TESTDATA", Path(__file__).parents[4] / "shared/testdata/pdq"))
    photos = sorted(p for p in folder.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if not photos:
        if os.environ.get("VIGIL_REQUIRE_TESTDATA"):
            pytest.fail(f"no PDQ reference images under {folder}")
        pytest.skip(f"no PDQ reference images under {folder}")
    classifier = load_classifier()
    assert classifier is not None
    flagged = [p.name for p in photos if classifier.score(p.read_bytes()).flagged(DEFAULT_THRESHOLD)]
    assert flagged == []

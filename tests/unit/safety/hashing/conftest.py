"""Fixtures for the PDQ tests: the reference data set, read in place."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_REPO_ROOT = Path(__file__).resolve().parents[4]


def _testdata_dir() -> Path:
    configured = os.environ.get("VIGIL_PDQ_TESTDATA")
    return Path(configured) if configured else _REPO_ROOT.parent / "shared" / "testdata" / "pdq"


@pytest.fixture(scope="session")
def pdq_testdata() -> Path:
    root = _testdata_dir()
    if not (root / "expected_pdq.csv").is_file():
        if os.environ.get("VIGIL_REQUIRE_TESTDATA") == "1":
            pytest.fail(f"VIGIL_REQUIRE_TESTDATA=1 but the PDQ reference data is not at {root}")
        pytest.skip(
            f"PDQ reference data not found at {root} (set VIGIL_PDQ_TESTDATA to the folder holding "
            "expected_pdq.csv, bridge-mods/, dih/, needles.txt, haystack.txt)"
        )
    return root

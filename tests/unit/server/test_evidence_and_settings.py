from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from vigil.errors import StorageError
from vigil.server.services.evidence import EvidenceBox
from vigil.server.settings import Environment, Settings


def test_prod_refuses_a_missing_or_bad_report_key(tmp_path: Path) -> None:
    franking = "ab" * 32
    with pytest.raises(pydantic.ValidationError, match="REPORT_KEY must be set"):
        Settings(environment=Environment.PROD, data_dir=tmp_path, franking_key=franking)  # type: ignore[arg-type]
    with pytest.raises(pydantic.ValidationError, match="32 bytes"):
        Settings(environment=Environment.PROD, data_dir=tmp_path, franking_key=franking, report_key="00" * 8)  # type: ignore[arg-type]
    good = Settings(
        environment=Environment.PROD,
        data_dir=tmp_path,
        franking_key=franking,  # type: ignore[arg-type]
        report_key="cd" * 32,  # type: ignore[arg-type]
        notice_signing_key="ef" * 32,  # type: ignore[arg-type]
    )
    assert good.load_report_key() == bytes.fromhex("cd" * 32)
    assert good.report_retention_days == 365


def test_dev_generates_and_keeps_a_report_key(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    key = settings.load_report_key()
    assert len(key) == 32 and settings.load_report_key() == key
    assert (tmp_path / "report.key").stat().st_mode & 0o077 == 0
    assert key != settings.load_franking_key()


def test_evidence_is_bound_to_its_row_and_tamper_evident() -> None:
    box = EvidenceBox(b"k" * 32)
    sealed = box.seal(b"reported text", "report_item:1:0:content")
    assert b"reported text" not in sealed
    assert box.open(sealed, "report_item:1:0:content") == b"reported text"
    with pytest.raises(StorageError):
        box.open(sealed, "report_item:2:0:content")
    for index in range(len(sealed)):
        flipped = bytearray(sealed)
        flipped[index] ^= 0x01
        with pytest.raises(StorageError):
            box.open(bytes(flipped), "report_item:1:0:content")
    with pytest.raises(StorageError):
        EvidenceBox(b"x" * 32).open(sealed, "report_item:1:0:content")

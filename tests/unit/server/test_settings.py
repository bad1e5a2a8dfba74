from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from vigil.server.settings import Environment, Settings


def test_prod_refuses_a_missing_or_weak_franking_key(tmp_path: Path) -> None:
    with pytest.raises(pydantic.ValidationError, match="FRANKING_KEY must be set"):
        Settings(environment=Environment.PROD, data_dir=tmp_path)
    with pytest.raises(pydantic.ValidationError, match="at least 32 bytes"):
        Settings(environment=Environment.PROD, data_dir=tmp_path, franking_key="00" * 8)  # type: ignore[arg-type]
    with pytest.raises(pydantic.ValidationError, match="hex"):
        Settings(environment=Environment.PROD, data_dir=tmp_path, franking_key="zz" * 32)  # type: ignore[arg-type]
    good = Settings(
        environment=Environment.PROD,
        data_dir=tmp_path,
        franking_key="ab" * 32,  # type: ignore[arg-type]
        report_key="cd" * 32,  # type: ignore[arg-type]
        notice_signing_key="ef" * 32,  # type: ignore[arg-type]
    )
    assert good.load_franking_key() == bytes.fromhex("ab" * 32)


def test_dev_generates_and_keeps_a_franking_key(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = settings.load_franking_key()
    assert len(first) == 32 and settings.load_franking_key() == first
    assert (tmp_path / "franking.key").stat().st_mode & 0o077 == 0


def test_notice_signing_key_is_refused_missing_outside_dev_and_generated_in_dev(tmp_path: Path) -> None:
    base = {
        "environment": Environment.PROD,
        "data_dir": tmp_path,
        "franking_key": "ab" * 32,
        "report_key": "cd" * 32,
    }
    with pytest.raises(pydantic.ValidationError, match="NOTICE_SIGNING_KEY must be set"):
        Settings(**base)  # type: ignore[arg-type]
    with pytest.raises(pydantic.ValidationError, match="32 bytes"):
        Settings(**base, notice_signing_key="00" * 8)  # type: ignore[arg-type]
    dev = Settings(data_dir=tmp_path)
    key = dev.load_notice_signing_key()
    assert len(key) == 32 and dev.load_notice_signing_key() == key
    assert key not in (dev.load_franking_key(), dev.load_report_key())
    assert (tmp_path / "notice.key").stat().st_mode & 0o077 == 0

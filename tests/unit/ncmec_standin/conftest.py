"""The stand-in in process (httpx over ASGI) with a clock the tests move, and the spec's §7 documents."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from ncmec_samples import SPEC_MINIMAL_REPORT
from vigil.ncmec_standin import create_standin_app

USER = "esp-user"
PASSWORD = "esp-password"
START = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

MINIMAL_REPORT = SPEC_MINIMAL_REPORT  # incidentDateTime is before START

SHA = "ab" * 32
PDQ = "cd" * 32


def file_details(report_id: int, file_id: str, middle: str | None = None) -> str:
    """Spec §7's fileDetails; `middle` replaces the elements between fileId and additionalInfo."""
    if middle is None:
        middle = f"""
  <originalFileName>IMG_0412.jpg</originalFileName>
  <fileViewedByEsp>true</fileViewedByEsp>
  <publiclyAvailable>false</publiclyAvailable>
  <fileRelevance>Reported</fileRelevance>
  <industryClassification>B2</industryClassification>
  <originalFileHash hashType="SHA256">{SHA}</originalFileHash>
  <originalFileHash hashType="PDQ">{PDQ}</originalFileHash>"""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<fileDetails>
  <reportId>{report_id}</reportId>
  <fileId>{file_id}</fileId>{middle}
  <additionalInfo>Reported by the recipient via a franking-verified user report.</additionalInfo>
</fileDetails>
"""


@dataclass
class FakeClock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def standin(clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    app = create_standin_app(USER, PASSWORD, clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://standin.test", auth=(USER, PASSWORD)
    ) as client:
        yield client

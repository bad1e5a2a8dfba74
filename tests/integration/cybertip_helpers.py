"""Helpers for the CyberTipline filing tests: a real `vigil cybertip stand-in` process, its test-only views
(`/_standin/reports`, `/_standin/faults`), and a case holding verified CSAM evidence (a stand-in picture:
random noise, nothing harmful) seeded through the server's own services and repositories."""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from live_server import free_port
from PIL import Image

from vigil.protocol.reports import ReportReason
from vigil.protocol.vouchers import seal_voucher
from vigil.safety.hashing.pdq import hash_image
from vigil.server.context import ServerContext
from vigil.server.db.accounts import UserRepository, UserRow
from vigil.server.db.cases import ReportItemRow, ReportRepository, ReportRow
from vigil.server.hashlist_keys import load_voucher_keypair
from vigil.server.services.cases import open_or_join_case
from vigil.server.services.evidence import evidence_box, item_content_context
from vigil.server.services.vouchers import open_voucher_case

USER = "standin-esp"
PASSWORD = "pw-standin-Qe7-only-for-tests"
T0 = 1_790_000_000_000  # 2026-09-21, in the past for every test clock


@dataclass
class StandIn:
    url: str
    process: subprocess.Popen[bytes]

    def view(self) -> dict[str, Any]:
        answer: dict[str, Any] = httpx.get(f"{self.url}/_standin/reports", timeout=10).json()
        return answer

    def report(self, report_id: int) -> dict[str, Any]:
        (found,) = [r for r in self.view()["reports"] if r["report_id"] == report_id]
        return found

    def fault(self, *rules: dict[str, Any]) -> None:
        httpx.post(f"{self.url}/_standin/faults", json={"rules": list(rules)}, timeout=10).raise_for_status()


@contextlib.contextmanager
def running_stand_in() -> Iterator[StandIn]:
    port = free_port()
    env = {**os.environ, "VIGIL_CYBERTIPLINE_USERNAME": USER, "VIGIL_CYBERTIPLINE_PASSWORD": PASSWORD}
    command = [
        sys.executable,
        "-m",
        "vigil",
        "cybertip",
        "stand-in",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    stand_in = StandIn(f"http://127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.communicate()
            try:
                httpx.get(f"{stand_in.url}/status", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the stand-in did not listen within 60 s"
                time.sleep(0.1)
        yield stand_in
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cybertip_env(stand_in: StandIn) -> dict[str, str]:
    return {
        "VIGIL_CYBERTIPLINE_URL": stand_in.url,
        "VIGIL_CYBERTIPLINE_USERNAME": USER,
        "VIGIL_CYBERTIPLINE_PASSWORD": PASSWORD,
    }


def picture(seed: int) -> bytes:
    """A PNG of smooth random shapes: enough structure for a good PDQ hash, nothing that depicts anyone."""
    rng = random.Random(seed)
    image = Image.new("RGB", (256, 256), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    pixels = image.load()
    assert pixels is not None
    for _ in range(12):
        x0, y0 = rng.randrange(200), rng.randrange(200)
        color = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        for x in range(x0, min(256, x0 + rng.randrange(20, 90))):
            for y in range(y0, min(256, y0 + rng.randrange(20, 90))):
                pixels[x, y] = color
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@dataclass(frozen=True)
class SeededCase:
    case_id: int
    subject: str
    subject_id: int
    reporter: str
    item_id: int
    match_id: int
    item_image: bytes
    match_image: bytes
    blob_id: str


async def seed_csam_case(ctx: ServerContext, tag: str, *, with_match: bool = True) -> SeededCase:
    """A case about `mallory-<tag>` with one verified report item carrying an image (and its blob id) and,
    with `with_match`, one verified image-match record (a refused profile photo, sealed to the safety
    team's voucher key), as the report and matching services store them."""
    box = evidence_box(ctx)
    item_image, match_image = picture(hash(tag) & 0xFFFF), picture((hash(tag) >> 16) & 0xFFFF)
    blob_id = secrets.token_hex(16)
    async with ctx.sessions() as session, session.begin():
        users = UserRepository(session)
        subject = await users.add(
            UserRow(username=f"mallory-{tag}", age_band="adult", band_changes_on=None, created_at_ms=T0)
        )
        reporter = await users.add(
            UserRow(username=f"alice-{tag}", age_band="adult", band_changes_on=None, created_at_ms=T0)
        )
        case = await open_or_join_case(session, subject, ReportReason.CSAM, 90, True, T0)
        report = await ReportRepository(session).add(
            ReportRow(
                case_id=case.id,
                reporter_user_id=reporter.id,
                reported_user_id=subject.id,
                reason=ReportReason.CSAM.value,
                reporter_age_band="adult",
                blocked=False,
                created_at_ms=T0 + 1000,
                expires_at_ms=T0 + 2000,  # already past retention: only a hold keeps it
            )
        )
        payload = {
            "sender": subject.username,
            "message_id": f"m-{tag}",
            "body": "",
            "attachment": {"blob_id": blob_id, "mime": "image/png"},
        }
        item = ReportItemRow(
            report_id=report.id,
            position=0,
            message_id=f"m-{tag}",
            sender=subject.username,
            conversation=reporter.username,
            server_ts_ms=T0 + 500,
            kind="image",
            verified=True,
            verdict="franking commitment and server tag verified",
            content_enc=box.seal(json.dumps(payload).encode(), item_content_context(report.id, 0, "content")),
            attachment_enc=box.seal(item_image, item_content_context(report.id, 0, "attachment")),
            attachment_mime="image/png",
        )
        await ReportRepository(session).add_items([item])
        match_id = 0
        if with_match:
            keys = load_voucher_keypair(ctx.settings)
            pdq = hash_image(match_image, dihedral=False).hash.hex()
            match_id = await open_voucher_case(
                session,
                source="profile_photo",
                subject_user_id=subject.id,
                reporter_user_id=None,
                direction="outgoing",
                bank="demo-bank",
                entry_hash=pdq,
                pdq=pdq,
                distance=0,
                verified=True,
                verification="matched on the server (profile photo upload)",
                message_id=None,
                voucher_id=None,
                mime="image/png",
                sealed_image=seal_voucher(keys.public, match_image),
                now_ms=T0 + 700,
            )
        return SeededCase(
            case.id,
            subject.username,
            subject.id,
            reporter.username,
            item.id,
            match_id,
            item_image,
            match_image,
            blob_id,
        )


async def add_reported_image(ctx: ServerContext, seeded: SeededCase, seed: int) -> tuple[int, bytes]:
    """Another verified report (one image item) joining the seeded case; returns the item id and image."""
    box = evidence_box(ctx)
    image = picture(seed)
    async with ctx.sessions() as session, session.begin():
        users = UserRepository(session)
        subject, reporter = await users.by_username(seeded.subject), await users.by_username(seeded.reporter)
        assert subject is not None and reporter is not None
        report = await ReportRepository(session).add(
            ReportRow(
                case_id=seeded.case_id,
                reporter_user_id=reporter.id,
                reported_user_id=subject.id,
                reason=ReportReason.CSAM.value,
                reporter_age_band="adult",
                blocked=False,
                created_at_ms=T0 + 5000,
                expires_at_ms=T0 + 10**12,
            )
        )
        payload = {"sender": subject.username, "message_id": f"later-{seed}", "body": ""}
        item = ReportItemRow(
            report_id=report.id,
            position=0,
            message_id=f"later-{seed}",
            sender=subject.username,
            conversation=reporter.username,
            server_ts_ms=T0 + 4000,
            kind="image",
            verified=True,
            verdict="franking commitment and server tag verified",
            content_enc=box.seal(json.dumps(payload).encode(), item_content_context(report.id, 0, "content")),
            attachment_enc=box.seal(image, item_content_context(report.id, 0, "attachment")),
            attachment_mime="image/png",
        )
        await ReportRepository(session).add_items([item])
        return item.id, image

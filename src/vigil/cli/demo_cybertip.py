"""The second act of `vigil demo`: a known image from the sender's device to a finished CyberTipline report.

A harmless generated picture is listed in a demo bank and the signed hash list is published; a client
that pinned the list authority's key tries to send it, and its device withholds the image and sends a
voucher instead; the safety team opens the voucher into a case; a lead reveals the image (audited) and
files the case (`vigil.server.services.cybertip_filing`) to a CyberTipline stand-in the demo starts on a
free loopback port; the finished NCMEC report id comes back and a preservation hold is placed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from PIL import Image, ImageDraw
from pydantic import SecretStr
from rich.console import Console

from vigil.client.client import Client
from vigil.client.safety import ImageWithheldError
from vigil.ncmec_standin import create_standin_app
from vigil.protocol.vouchers import encode_authority_key
from vigil.safety.hashing.pdq import hash_image
from vigil.safety.ncmec import IncidentType
from vigil.server.db.cases import QueueFilter
from vigil.server.embedded import free_port
from vigil.server.hashlist_keys import load_signing_key, load_voucher_keypair, load_voucher_public_key
from vigil.server.offline import offline_context
from vigil.server.services import cybertip_filing, hashlist, vouchers
from vigil.server.services.cases import queue
from vigil.server.settings import Settings

__all__ = ["CyberTipDemo", "demo_known_image", "run_cybertip_act"]

DEMO_BANK = "demo-bank (a harmless generated test picture)"
STANDIN_USER, STANDIN_PASSWORD = "demo", "demo-standin-password"
LEAD = "reviewer:demo-lead"


@dataclass(frozen=True)
class CyberTipDemo:
    voucher_id: str
    case_id: int
    ncmec_report_id: int
    standin_state: str
    hold_until_ms: int


def demo_known_image(seed: int = 2026) -> bytes:
    """Coloured shapes on a plain background (nothing that depicts anyone), with a reliable PDQ hash."""
    rng = random.Random(seed)
    while True:
        image = Image.new("RGB", (160, 160), tuple(rng.randrange(256) for _ in range(3)))
        draw = ImageDraw.Draw(image)
        for _ in range(10):
            x0, y0 = rng.randrange(130), rng.randrange(130)
            box = (x0, y0, x0 + rng.randrange(12, 80), y0 + rng.randrange(12, 80))
            colour = tuple(rng.randrange(256) for _ in range(3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
        out = io.BytesIO()
        image.save(out, format="PNG")
        if hash_image(out.getvalue()).quality >= 50:
            return out.getvalue()


@contextlib.asynccontextmanager
async def running_standin() -> AsyncIterator[str]:
    """A CyberTipline stand-in on a free loopback port, in this process."""
    port = free_port()
    config = uvicorn.Config(
        create_standin_app(STANDIN_USER, STANDIN_PASSWORD), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the CyberTipline stand-in stopped during start-up")
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def run_cybertip_act(
    console: Console, url: str, data_dir: Path, root: Path, recipient: str, passphrase: str
) -> CyberTipDemo:
    """Runs the act against the demo's embedded server (`url`, `data_dir`) and prints each step."""
    known = demo_known_image()
    async with running_standin() as standin_url:
        settings = Settings(
            data_dir=data_dir,
            cybertipline_url=standin_url,
            cybertipline_username=STANDIN_USER,
            cybertipline_password=SecretStr(STANDIN_PASSWORD),
        )
        async with offline_context(settings) as team:
            await hashlist.create_bank(team, DEMO_BANK)
            await hashlist.import_entries(
                team, DEMO_BANK, f"pdq {hash_image(known).hash.hex()}", "threatexchange"
            )
            published = await hashlist.publish(
                team,
                load_signing_key(settings),
                load_voucher_public_key(settings),
                issued_at=int(time.time()),
            )
            console.print(
                f"\n[bold]Known-image matching to the CyberTipline[/bold]: a harmless generated picture is "
                f"listed in {DEMO_BANK!r}; hash list version {published.version} is signed and published."
            )
            dave = await Client.register(url, "dave", dt.date(1990, 1, 1), root / "dave.db", passphrase)
            authority = encode_authority_key(load_signing_key(settings).public_key())
            dave.safety.pin_authority(authority)
            await dave.safety.sync()
            try:
                await dave.send_attachment(recipient, known, "image/png", caption="look")
                raise RuntimeError("the known image was not withheld")
            except ImageWithheldError as withheld:
                voucher_id = withheld.voucher_id or "?"
            finally:
                await dave.close()
            console.print(
                f"dave tries to send it to {recipient}: dave's device matches it against the list, "
                f"withholds it (nothing uploaded, nothing sent) and sends voucher {voucher_id[:8]}.. instead."
            )
            opened = await vouchers.open_pending_vouchers(team, load_voucher_keypair(settings))
            (match,) = [m for m in await vouchers.list_image_cases(team) if m.voucher_id == voucher_id]
            (case,) = [c for c in await queue(team, QueueFilter()) if c.subject == "dave"]
            console.print(
                f"The safety team opens {opened.opened} voucher(s): image match {match.id} "
                f"({match.verification}) joins case {case.id} about dave at the top of the review queue."
            )
            await vouchers.reveal_match_image(team, LEAD, match.id)
            record = await cybertip_filing.file_report(
                team, case.id, incident_type=IncidentType.CHILD_PORNOGRAPHY, classifications={}, actor=LEAD
            )
            (hold,) = [h for h in await cybertip_filing.list_holds(team) if h.filing_id == record.id]
        async with httpx.AsyncClient(timeout=10) as http:  # the stand-in runs on this event loop
            view = (await http.get(f"{standin_url}/_standin/reports")).json()
        (at_ncmec,) = [r for r in view["reports"] if r["report_id"] == record.ncmec_report_id]
    assert record.ncmec_report_id is not None
    until = dt.datetime.fromtimestamp(hold.hold_until_ms / 1000, dt.UTC).date()
    console.print(
        f"A lead reviews it (the reveal is audited, so fileViewedByEsp=true) and files case {case.id} to the "
        f"CyberTipline stand-in at {standin_url}: /submit, /upload, /fileinfo, /finish."
    )
    console.print(
        f"[bold green]Finished CyberTipline report id: {record.ncmec_report_id}[/bold green] "
        f"(stand-in state: {at_ncmec['state']}, {len(at_ncmec['files'])} file(s)); the case's evidence is "
        f"under a preservation hold until {until}."
    )
    return CyberTipDemo(voucher_id, case.id, record.ncmec_report_id, at_ncmec["state"], hold.hold_until_ms)

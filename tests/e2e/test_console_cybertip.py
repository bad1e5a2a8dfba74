"""Issue 9 end to end in a real browser: from a known image sent in a group to a finished CyberTipline
report on the stand-in, through a real `vigil serve` process and a real `vigil cybertip stand-in` process
(the server's VIGIL_CYBERTIPLINE_URL points at it).

A sender whose device holds the signed hash list sends a listed image to a group: their own device withholds
it and sends a voucher. A lead opens the pending vouchers from the queue, reveals the image (audit-logged,
which is what makes `fileViewedByEsp` true), chooses the incident type, classifies the file, checks the
preview (the documents as they will be sent, the image blurred) and submits. The stand-in then holds a
finished report with that file; the console lists the report with NCMEC's id and the case's preservation
hold; the retention sweeps, run a year on, keep the held account's metadata.

When NCMEC refuses (here: the stand-in restarted with other credentials), the reports page shows NCMEC's
code and description and nothing of the content. A reviewer without the lead role cannot file, and a lead
cannot release a hold. Screenshots of the preview and the reports page go to the test's tmp dir (or
$VIGIL_TEST_OUTPUT).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cli_runner import vigil_in_thread
from helpers import register
from live_server import ServerProcess, free_port, start_server
from safety_helpers import server_context
from sqlalchemy import func, select
from test_console_browser import ADMIN_PASSWORD, CHROMIUM, REVIEWER_PASSWORD, _browser, _sign_in
from test_hashlist import bank_with, pinned, publish, unrelated_images

from vigil.client.safety import ImageWithheldError
from vigil.console.auth import Role, create_reviewer
from vigil.server.context import ServerContext
from vigil.server.db.accounts import UserRow
from vigil.server.db.hashlists import VoucherRow
from vigil.server.db.metadata import MetadataEventRow
from vigil.server.hashlist_keys import load_voucher_keypair
from vigil.server.services import metadata, vouchers
from vigil.server.services.preservation import HoldRecord, list_holds, preserved_copies
from vigil.server.services.retention import SWEEPS, run_sweep

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install -y chromium)"
)

NCMEC_USER = "vigil-rehearsal"
NCMEC_PASSWORD = "pw-standin-e2e-only"
INCIDENT = "Child Pornography (possession, manufacture, and distribution)"
DAY_MS = 24 * 3600 * 1000


@dataclass
class StandIn:
    """A `vigil cybertip stand-in` child process on a fixed port (so it can be restarted where the
    server expects it)."""

    port: int
    password: str = NCMEC_PASSWORD
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {
            **os.environ,
            "VIGIL_CYBERTIPLINE_USERNAME": NCMEC_USER,
            "VIGIL_CYBERTIPLINE_PASSWORD": self.password,
        }
        command = [sys.executable, "-m", "vigil", "cybertip", "stand-in", "--port", str(self.port),
                   "--log-level", "warning"]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, self.process.communicate()
            try:
                httpx.get(f"{self.url}/_standin/reports", timeout=2)
                return
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the stand-in did not start listening within 60 s"
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def state(self) -> dict:  # type: ignore[type-arg]
        answer: dict = httpx.get(f"{self.url}/_standin/reports", timeout=5).json()  # type: ignore[type-arg]
        return answer


async def _events_by(ctx: ServerContext, *usernames: str) -> dict[str, int]:
    """How many events each account took, found by its pseudonym (the log holds no usernames)."""
    async with ctx.sessions() as session:
        found = await session.execute(
            select(UserRow.username, UserRow.id).where(UserRow.username.in_(usernames))
        )
        alias = {name: metadata.pseudonym_of(ctx, user_id) for name, user_id in found.all()}
        return {
            name: int(
                await session.scalar(
                    select(func.count())
                    .select_from(MetadataEventRow)
                    .where(MetadataEventRow.actor == alias[name])
                )
                or 0
            )
            for name in usernames
        }


async def _holds(live: ServerProcess) -> list[HoldRecord]:
    async with server_context(live.data_dir, live.database_url) as ctx:
        return await list_holds(ctx)


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    standin = StandIn(free_port())
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()


@pytest.fixture
async def live(tmp_path: Path, stand_in: StandIn) -> AsyncIterator[ServerProcess]:
    server, _database = start_server(
        "sqlite",
        tmp_path,
        env_extra={
            "VIGIL_CYBERTIPLINE_URL": stand_in.url,
            "VIGIL_CYBERTIPLINE_USERNAME": NCMEC_USER,
            "VIGIL_CYBERTIPLINE_PASSWORD": NCMEC_PASSWORD,
        },
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("VIGIL_TEST_OUTPUT", tmp_path)) / "console-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def test_a_lead_files_a_group_image_match_to_the_cybertipline(
    live: ServerProcess, stand_in: StandIn, tmp_path: Path, shots: Path
) -> None:
    env = {
        "VIGIL_DATA_DIR": str(live.data_dir),
        "VIGIL_DATABASE_URL": live.database_url,
        "VIGIL_CONSOLE_PASSWORD": ADMIN_PASSWORD,
    }
    created = await vigil_in_thread("console", "create-admin", "root", env=env)
    assert created.returncode == 0, created.stdout + created.stderr
    known, _other = unrelated_images(2, seed=9)
    async with server_context(live.data_dir, live.database_url) as team:
        await create_reviewer(team, "lena", REVIEWER_PASSWORD, Role.LEAD, "test")
        await create_reviewer(team, "rita", REVIEWER_PASSWORD, Role.REVIEWER, "test")
        await bank_with(team, "demo-known", known)
        await publish(team)
        # The sender runs the shipped client (list pinned); trent runs a modified one without the list,
        # so his copy is caught by the recipients' devices instead.
        mallory = await pinned(await register(live.url, tmp_path, "mallory"), team)
        alice = await pinned(await register(live.url, tmp_path, "alice"), team)
        bob = await pinned(await register(live.url, tmp_path, "bob"), team)
        trent = await register(live.url, tmp_path, "trent")
    group = (await alice.groups.create([mallory.username, bob.username, trent.username])).group_id
    for member in (mallory, bob, trent):
        await member.fetch()
    await mallory.groups.send_text(group, "hi all")  # metadata about mallory that the hold must keep
    for member in (alice, bob, trent):
        assert len(await member.fetch()) == 1
    with pytest.raises(ImageWithheldError) as withheld:
        await mallory.groups.send_attachment(group, known, "image/png", caption="look")
    assert withheld.value.voucher_id is not None
    for member in (alice, bob, trent):
        assert await member.fetch() == []  # withheld on the sender's device: nothing was sent
    await trent.groups.send_attachment(group, known, "image/png", caption="again")
    for member in (alice, bob):
        (notice,) = await member.fetch()
        assert notice.voucher_id is not None  # type: ignore[union-attr]

    manager, browser = await _browser()
    try:
        page = await (await browser.new_context(viewport={"width": 1400, "height": 1100})).new_page()
        await _sign_in(page, live.url, "lena", REVIEWER_PASSWORD)
        await page.get_by_role("button", name="Open pending vouchers").click()
        await page.wait_for_url(re.compile(r".*/console/queue\?opened=\d+$"))
        # mallory's own device (outgoing) and alice's and bob's on receiving trent's copy
        assert page.url.endswith("opened=3"), page.url
        row = page.locator("table.queue tbody tr", has_text=mallory.username)
        await row.wait_for()
        assert "verified" in await row.inner_text()
        await row.locator("a.case-link").click()
        await page.wait_for_url(re.compile(r".*/console/cases/\d+$"))
        case_id = int(page.url.rsplit("/", 1)[1])
        match = page.locator("article[id^=match-]")
        assert await match.count() == 1, await page.content()
        await match.get_by_role("button", name="Reveal image (logged)").click()
        await page.wait_for_load_state()

        # -- the filing form ------------------------------------------------------------------------
        await page.get_by_role("link", name="Report to NCMEC").click()
        await page.wait_for_url(re.compile(rf".*/console/cases/{case_id}/cybertip$"))
        await page.get_by_label("Incident type").select_option(INCIDENT)
        await page.get_by_label("Classification").select_option("B2")
        await page.get_by_label("Possible self-production").check()
        await page.get_by_role("button", name="Preview the report").click()
        await page.wait_for_url(re.compile(rf".*/console/cases/{case_id}/cybertip/preview$"))

        # -- the preview: the documents as they will be sent, the image blurred -----------------------
        report_xml = await page.locator("pre.document-report").inner_text()
        assert f"<incidentType>{INCIDENT}</incidentType>" in report_xml
        assert mallory.username in report_xml
        assert report_xml.index("<incidentSummary>") < report_xml.index("<reporter>")
        file_xml = await page.locator("pre.document-file").inner_text()
        assert "<industryClassification>B2</industryClassification>" in file_xml
        assert re.search(r"<fileAnnotations><possibleSelfProduction ?/></fileAnnotations>", file_xml)
        assert "<fileViewedByEsp>true</fileViewedByEsp>" in file_xml  # the lead revealed it above
        assert hashlib.sha256(known).hexdigest() in file_xml
        image = page.locator("img.evidence")
        assert await image.get_attribute("class") == "evidence blurred"
        await page.screenshot(path=str(shots / "cybertip-1-preview.png"), full_page=True)
        assert stand_in.state()["reports"] == []  # nothing is sent before the lead confirms

        await page.get_by_role("button", name="Submit to NCMEC").click()
        await page.wait_for_url(re.compile(r".*/console/cybertip/reports.*"))
        filed = page.locator("table.cybertip tbody tr", has_text=f"#{case_id}")
        await filed.wait_for()
        await page.screenshot(path=str(shots / "cybertip-2-reports.png"), full_page=True)
        assert "finished" in await filed.locator(".filing-state").inner_text()

        # -- the stand-in holds the finished report with the file --------------------------------------
        (report,) = stand_in.state()["reports"]
        assert report["state"] == "finished" and report["incident_type"] == INCIDENT
        (stored,) = report["files"]
        assert stored["sha256"] == hashlib.sha256(known).hexdigest() and stored["details"] is True
        assert await filed.locator(".ncmec-id").inner_text() == str(report["report_id"])
        await filed.get_by_role("link", name=f"#{case_id}").click()
        await page.wait_for_url(re.compile(rf".*/console/cases/{case_id}$"))
        summary = await page.locator("#cybertip").inner_text()
        assert str(report["report_id"]) in summary and "finished" in summary
        assert "Every file of this case is in a finished report" in summary  # nothing new to report
        assert await page.get_by_role("link", name="Report to NCMEC").count() == 0
        again = await page.request.get(f"{live.url}/console/cases/{case_id}/cybertip")
        assert again.status == 409 and "already reported" in await again.text()

        # -- the preservation hold, and retention a year on --------------------------------------------
        await page.get_by_role("link", name="Preservation holds").click()
        await page.wait_for_url(re.compile(r".*/console/holds$"))
        hold = page.locator("table.holds tbody tr", has_text=mallory.username)
        await hold.wait_for()
        assert str(report["report_id"]) in await hold.inner_text()
        assert await page.get_by_role("button", name=re.compile("Release")).count() == 0  # lead
        await page.screenshot(path=str(shots / "cybertip-3-holds.png"), full_page=True)

        # -- retention ~10 months on: the originals go at their time, the hold's sealed copy stays ------
        later = int(time.time() * 1000) + 300 * DAY_MS  # within the one-year hold
        async with server_context(live.data_dir, live.database_url) as ctx:
            before = await _events_by(ctx, mallory.username, trent.username)
            assert before[mallory.username] > 0 and before[trent.username] > 0
            for sweep in SWEEPS:
                await run_sweep(ctx, sweep, later)
            after = await _events_by(ctx, mallory.username, trent.username)
            assert after == {mallory.username: 0, trent.username: 0}
            (copy,) = await preserved_copies(ctx, case_id)
            alias = copy["subject"]["pseudonym"]  # the copy keeps the events she took and received
            taken = [e for e in copy["tables"]["metadata_events"] if e["actor"] == alias]
            assert len(taken) == before[mallory.username]
            async with ctx.sessions() as session:
                kept = set((await session.scalars(select(VoucherRow.id))).all())
            # every voucher row went at its time; mallory's is in the hold's sealed copy
            assert kept == set()
            assert [v["id"] for v in copy["tables"]["vouchers"]] == [withheld.value.voucher_id]
            (held_match,) = [m for m in await vouchers.list_image_cases(ctx) if m.subject == mallory.username]
            image, _mime = await vouchers.case_image(ctx, held_match.id, load_voucher_keypair(ctx.settings))
            assert image == known

        # -- NCMEC refuses: its code and description, never content ------------------------------------
        stand_in.stop()
        stand_in.password = "another password"
        stand_in.start()
        # the console-session sweep ended every session that would have expired by then: sign in again
        await _sign_in(page, live.url, "lena", REVIEWER_PASSWORD)
        other = page.locator("table.queue tbody tr", has_text=trent.username)
        await other.locator("a.case-link").click()
        await page.wait_for_url(re.compile(r".*/console/cases/\d+$"))
        other_case = int(page.url.rsplit("/", 1)[1])
        await page.get_by_role("link", name="Report to NCMEC").click()
        await page.get_by_label("Incident type").select_option(INCIDENT)
        classifications = page.get_by_label("Classification")
        assert await classifications.count() == 2  # alice's and bob's devices each caught trent's copy
        for index in range(2):
            await classifications.nth(index).select_option("A2")
        await page.get_by_role("button", name="Preview the report").click()
        await page.get_by_role("button", name="Submit to NCMEC").click()
        await page.wait_for_load_state()
        shown = await page.locator("main").inner_text()
        assert "NCMEC code 2000 (authentication required)" in shown, shown
        assert "again" not in shown  # the caption (message content) is never shown in an error
        await page.goto(f"{live.url}/console/cybertip/reports")
        failed = page.locator("table.cybertip tbody tr", has_text=f"#{other_case}")
        assert "failed" in await failed.locator(".filing-state").inner_text()
        answer = await failed.locator(".ncmec-answer").inner_text()
        assert "code 2000 authentication required" in answer.lower(), answer
        await page.screenshot(path=str(shots / "cybertip-4-failed.png"), full_page=True)
        lead_csrf = await page.locator("input[name=csrf]").first.get_attribute("value")
        assert lead_csrf

        # -- a reviewer without the lead role cannot file ------------------------------------------------
        reviewer = await (await browser.new_context()).new_page()
        await _sign_in(reviewer, live.url, "rita", REVIEWER_PASSWORD)
        await reviewer.goto(f"{live.url}/console/cases/{other_case}")
        assert await reviewer.get_by_role("link", name="Report to NCMEC").count() == 0
        assert "A lead files CyberTipline reports." in await reviewer.locator("#cybertip").inner_text()
        csrf = await reviewer.locator("input[name=csrf]").first.get_attribute("value")
        assert csrf
        for path in (f"cases/{other_case}/cybertip", "cybertip/reports", "holds"):
            response = await reviewer.goto(f"{live.url}/console/{path}")
            assert response is not None and response.status == 403, path
        refused = await reviewer.request.post(
            f"{live.url}/console/cases/{other_case}/cybertip/preview",
            form={"csrf": csrf, "incident_type": INCIDENT},
        )
        assert refused.status == 403 and "needs the lead role" in await refused.text()
        refused = await reviewer.request.post(
            f"{live.url}/console/cases/{other_case}/cybertip",
            form={"csrf": csrf, "incident_type": INCIDENT},
        )
        assert refused.status == 403 and "needs the lead role" in await refused.text()
        # ... and a lead cannot release a hold (refused, and the refusal is audited)
        (hold_id,) = [h.id for h in await _holds(live)]
        refused = await page.request.post(
            f"{live.url}/console/holds/{hold_id}/release", form={"csrf": lead_csrf}
        )
        assert refused.status == 403 and "only an admin" in await refused.text()
        assert stand_in.state()["reports"] == []  # the restarted stand-in refused filing 2 at /submit

        # -- an admin sees the hold, but cannot release it before its date ---------------------------------
        admin = await (await browser.new_context()).new_page()
        await _sign_in(admin, live.url, "root", ADMIN_PASSWORD)
        await admin.goto(f"{live.url}/console/holds")
        assert "in force" in await admin.locator(f"#hold-{hold_id} .hold-status").inner_text()
        assert await admin.get_by_role("button", name=re.compile("Release")).count() == 0
        admin_csrf = await admin.locator("input[name=csrf]").first.get_attribute("value")
        assert admin_csrf
        early = await admin.request.post(
            f"{live.url}/console/holds/{hold_id}/release", form={"csrf": admin_csrf}
        )
        assert early.status == 409, await early.text()
        assert all(h.in_force for h in await _holds(live))
    finally:
        await browser.close()
        await manager.__aexit__(None, None, None)
        for client in (mallory, alice, bob, trent):
            await client.close()

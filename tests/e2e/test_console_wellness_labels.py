"""Reviewer wellness and labels in Debian's Chromium against one real server for the module (its soft
exposure limit set to 2 so the break reminder is reached with real reveals): the reminder appears once
the reviewer revealed the limit's worth of images today and never blocks work; labels are added with and
without an expiry, shown on the case and the account lookup, removed, and an expired label is gone."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import register
from live_server import ServerProcess, start_server
from PIL import Image
from safety_helpers import server_context
from sqlalchemy import select

from vigil.console.auth import Role, create_reviewer
from vigil.protocol.reports import ReportReason
from vigil.server.db.audit import AuditRow
from vigil.server.db.labels import AccountLabelRow

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
PASSWORD = "reviewer password for tests"
DAY_MS = 86_400_000

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install -y chromium)"
)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server, _database = start_server(
        "sqlite", tmp_path_factory.mktemp("console-wellness"), {"VIGIL_CONSOLE_EXPOSURE_SOFT_LIMIT": "2"}
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield chromium
        await chromium.close()


async def _sign_in(browser: Any, url: str, name: str) -> Any:
    page = await (await browser.new_context(viewport={"width": 1400, "height": 1000})).new_page()
    await page.goto(f"{url}/console/login")
    await page.get_by_label("Name").fill(name)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r".*/console/queue$"))
    return page


def _picture(shade: int) -> bytes:
    image = Image.new("RGB", (64, 48), (shade, 255 - shade, 90))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


async def test_break_reminder_after_the_soft_limit_of_reveals_never_blocks(
    live: ServerProcess, browser: Any, tmp_path: Path
) -> None:
    async with server_context(live.data_dir, live.database_url) as ctx:
        await create_reviewer(ctx, "wes", PASSWORD, Role.REVIEWER, "test")
    mallory = await register(live.url, tmp_path, "mallory")
    bob = await register(live.url, tmp_path, "bob")
    await mallory.send_attachment(bob.username, _picture(10), "image/png", name="a.png", caption="one")
    await mallory.send_attachment(bob.username, _picture(200), "image/png", name="b.png", caption="two")
    events = await bob.fetch()
    case_id = (await bob.report(events[-1], ReportReason.CSAM, context=1)).case_id

    wes = await _sign_in(browser, live.url, "wes")
    await wes.goto(f"{live.url}/console/cases/{case_id}")
    assert await wes.locator("img.evidence.blurred").count() == 2
    assert await wes.locator(".exposures").inner_text() == "0 images revealed today"
    assert await wes.locator(".break-reminder").count() == 0

    await wes.get_by_role("button", name="Reveal image (logged)").first.click()
    await wes.wait_for_load_state()
    assert await wes.locator(".exposures").inner_text() == "1 image revealed today"
    assert await wes.locator(".break-reminder").count() == 0  # below the soft limit of 2

    await wes.get_by_role("button", name="Reveal image (logged)").first.click()
    await wes.wait_for_load_state()
    assert await wes.locator(".exposures").inner_text() == "2 images revealed today"
    reminder = wes.get_by_role("alert")
    assert "Take a break" in await reminder.inner_text()
    # Both revealed images keep the wellness defaults: greyscale and blurred.
    for image in await wes.locator("img.evidence").all():
        assert await image.get_attribute("class") == "evidence revealed blur-2"
    # Soft: the reviewer can still work the case (a note here), and the reminder stays on other cases.
    await wes.get_by_label("Add a note").fill("taking a short break after this one")
    await wes.get_by_role("button", name="Add note").click()
    await wes.wait_for_load_state()
    assert "taking a short break after this one" in await wes.locator("#notes").inner_text()
    assert await wes.locator(".break-reminder").count() == 1


async def test_labels_are_added_with_and_without_expiry_removed_and_expire(
    live: ServerProcess, browser: Any, tmp_path: Path
) -> None:
    async with server_context(live.data_dir, live.database_url) as ctx:
        await create_reviewer(ctx, "lia", PASSWORD, Role.REVIEWER, "test")
    spammer = await register(live.url, tmp_path, "spammer")
    reporter = await register(live.url, tmp_path, "reporter")
    case_id = (await reporter.report_account(spammer.username, ReportReason.SPAM, block=False)).case_id

    lia = await _sign_in(browser, live.url, "lia")
    await lia.goto(f"{live.url}/console/cases/{case_id}")
    assert await lia.locator("ul.labels .account-label").count() == 0
    await lia.get_by_label("Label", exact=True).fill("repeat-spammer")
    await lia.get_by_label("Days (empty: until removed)").fill("1")
    await lia.get_by_role("button", name="Add label").click()
    await lia.wait_for_load_state()
    await lia.get_by_label("Label", exact=True).fill("watch")
    await lia.get_by_role("button", name="Add label").click()
    await lia.wait_for_load_state()
    labels = lia.locator("ul.labels li")
    assert [await b.inner_text() for b in await lia.locator("ul.labels .account-label").all()] == [
        "repeat-spammer",
        "watch",
    ]
    assert "until removed" in await labels.filter(has_text="watch").inner_text()
    assert "until removed" not in await labels.filter(has_text="repeat-spammer").inner_text()
    await lia.goto(f"{live.url}/console/accounts?username={spammer.username}")
    assert "repeat-spammer" in await lia.locator("main").inner_text()

    # A reviewer removes one label.
    await lia.goto(f"{live.url}/console/cases/{case_id}")
    await lia.get_by_role("button", name="Remove watch").click()
    await lia.wait_for_load_state()
    assert [await b.inner_text() for b in await lia.locator("ul.labels .account-label").all()] == [
        "repeat-spammer"
    ]

    # A day passes (moved in the database: the server runs on the real clock): the 1-day label expired.
    async with server_context(live.data_dir, live.database_url) as ctx, ctx.sessions() as session:
        async with session.begin():
            row = await session.scalar(
                select(AccountLabelRow).where(AccountLabelRow.label == "repeat-spammer")
            )
            assert row is not None and row.expires_at_ms == row.created_at_ms + DAY_MS
            row.created_at_ms -= DAY_MS + 1
            row.expires_at_ms -= DAY_MS + 1
        audit = (
            await session.scalars(select(AuditRow.action).where(AuditRow.action.like("account.%label%")))
        ).all()
        assert sorted(audit) == ["account.labelled", "account.labelled", "account.unlabelled"]
    await lia.reload()
    assert await lia.locator("ul.labels .account-label").count() == 0
    assert "No labels." in await lia.locator("ul.labels").inner_text()
    await lia.goto(f"{live.url}/console/accounts?username={spammer.username}")
    assert "repeat-spammer" not in await lia.locator("main").inner_text()

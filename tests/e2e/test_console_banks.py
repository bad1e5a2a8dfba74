"""The console's hash-bank pages in a real browser (Debian's Chromium via Playwright) against a real server.

An admin creates a bank, imports a small threatexchange file into it, publishes the signed list (this
deployment lets the console hold the authority key: VIGIL_HASHLIST_CONSOLE_PUBLISH=true) and disables the
bank; every change is in the audit log. A reviewer can see the banks but not change them (403).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cli_runner import vigil_in_thread
from live_server import ServerProcess, start_server
from safety_helpers import server_context
from test_console_browser import ADMIN_PASSWORD, CHROMIUM, REVIEWER_PASSWORD, _browser, _sign_in

from vigil.console.auth import Role, create_reviewer
from vigil.server.services import hashlist

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install -y chromium)"
)

HASHES = [secrets.token_hex(32) for _ in range(2)]


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    server, _database = start_server("sqlite", tmp_path, env_extra={"VIGIL_HASHLIST_CONSOLE_PUBLISH": "true"})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("VIGIL_TEST_OUTPUT", tmp_path)) / "console-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def test_admin_manages_a_bank_and_a_reviewer_cannot(live: ServerProcess, shots: Path) -> None:
    env = {
        "VIGIL_DATA_DIR": str(live.data_dir),
        "VIGIL_DATABASE_URL": live.database_url,
        "VIGIL_CONSOLE_PASSWORD": ADMIN_PASSWORD,
    }
    created = await vigil_in_thread("console", "create-admin", "root", env=env)
    assert created.returncode == 0, created.stdout + created.stderr
    async with server_context(live.data_dir, live.database_url) as ctx:
        await create_reviewer(ctx, "rita", REVIEWER_PASSWORD, Role.REVIEWER, "test")

    manager, browser = await _browser()
    try:
        page = await (await browser.new_context(viewport={"width": 1400, "height": 1000})).new_page()
        await _sign_in(page, live.url, "root", ADMIN_PASSWORD)
        await page.get_by_role("link", name="Hash banks").click()
        await page.wait_for_url(re.compile(r".*/console/banks$"))
        assert "No banks yet." in await page.locator("main").inner_text()

        await page.get_by_label("Bank name").fill("known-abuse")
        await page.get_by_label("Distance threshold").fill("28")
        await page.get_by_role("button", name="Create bank").click()
        row = page.locator("table.banks tbody tr", has_text="known-abuse")
        await row.wait_for()
        assert re.fullmatch(
            r"known-abuse\s+normal\s+28\s+enabled\s+0\s+Disable", (await row.inner_text()).strip()
        )

        await page.get_by_label("Bank", exact=True).select_option("known-abuse")
        await page.get_by_label("Format").select_option("threatexchange")
        await page.get_by_label("File").set_input_files(
            files=[
                {
                    "name": "signals.txt",
                    "mimeType": "text/plain",
                    "buffer": "".join(f"pdq {h}\n" for h in HASHES).encode(),
                }
            ]
        )
        await page.get_by_role("button", name="Import").click()
        await page.wait_for_url(re.compile(r".*/console/banks\?imported=2$"))
        assert "2 new entries added" in await page.locator("main").inner_text()
        assert await row.locator(".bank-entries").inner_text() == "2"
        await page.screenshot(path=str(shots / "banks-1-imported.png"), full_page=True)

        await page.get_by_role("button", name="Publish version 1").click()
        await page.wait_for_url(re.compile(r".*/console/banks\?published=1$"))
        assert "Published list version 1" in await page.locator("main").inner_text()

        await page.get_by_role("button", name="Disable known-abuse").click()
        await page.wait_for_load_state()
        assert await row.locator(".bank-status").inner_text() == "disabled"
        await page.screenshot(path=str(shots / "banks-2-disabled.png"), full_page=True)

        async with server_context(live.data_dir, live.database_url) as ctx:
            (info,) = await hashlist.list_banks(ctx)
            assert (info.name, info.enabled, info.entries, info.threshold) == ("known-abuse", False, 2, 28)
            head = await hashlist.current_head(ctx)
            assert head.version == 1 and head.voucher_key is not None

        await page.goto(f"{live.url}/console/audit")
        audit = await page.locator("main").inner_text()
        assert "Chain intact" in audit
        for action in ("bank.created", "bank.imported", "hashlist.published", "bank.disabled"):
            line = page.locator("tbody tr", has_text=action)
            assert await line.count() == 1, action
            text = await line.inner_text()
            assert "reviewer:root" in text, text
        assert "signals.txt" in await page.locator("tbody tr", has_text="bank.imported").inner_text()

        # a reviewer sees the banks but cannot change them
        reviewer = await (await browser.new_context()).new_page()
        await _sign_in(reviewer, live.url, "rita", REVIEWER_PASSWORD)
        response = await reviewer.goto(f"{live.url}/console/banks")
        assert response is not None and response.status == 200
        assert "known-abuse" in await reviewer.locator("table.banks").inner_text()
        assert await reviewer.get_by_role("button", name="Create bank").count() == 0
        assert await reviewer.get_by_role("button", name=re.compile("Enable|Disable")).count() == 0
        csrf = await reviewer.locator("input[name=csrf]").first.get_attribute("value")
        assert csrf
        refused = await reviewer.request.post(
            f"{live.url}/console/banks", form={"csrf": csrf, "name": "sneaky", "kind": "negative"}
        )
        assert refused.status == 403 and "needs the lead role" in await refused.text()
        refused = await reviewer.request.post(
            f"{live.url}/console/banks/enabled", form={"csrf": csrf, "name": "known-abuse", "enabled": "yes"}
        )
        assert refused.status == 403
        refused = await reviewer.request.post(f"{live.url}/console/hashlist/publish", form={"csrf": csrf})
        assert refused.status == 403
        # an admin's POST without the CSRF token is refused too
        forged = await page.request.post(f"{live.url}/console/banks", form={"name": "no-token"})
        assert forged.status == 403
        async with server_context(live.data_dir, live.database_url) as ctx:
            assert [b.name for b in await hashlist.list_banks(ctx)] == ["known-abuse"]
            assert (await hashlist.list_banks(ctx))[0].enabled is False
    finally:
        await browser.close()
        await manager.__aexit__(None, None, None)

"""The review console in a real browser (Debian's Chromium, driven by Playwright) against a real server.

Someone reports an image they were sent; a reviewer signs in, opens the queue and the case, reveals the image
(the reveal lands in the audit trail), and suspends the account, after which its next send is refused.
RBAC, the sign-in redirect and CSRF refusal are checked too. Screenshots go to the test's tmp dir (or
$VIGIL_TEST_OUTPUT when set).
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cli_runner import vigil_in_thread
from helpers import register
from live_server import ServerProcess, start_server
from PIL import Image
from safety_helpers import server_context

from vigil.console.auth import Role, create_reviewer
from vigil.errors import PolicyViolation
from vigil.protocol.reports import ReportReason
from vigil.server.services.policies import add_policy

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ADMIN_PASSWORD = "admin password for tests"
REVIEWER_PASSWORD = "reviewer password for tests"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install -y chromium)"
)


def _picture() -> bytes:
    image = Image.new("RGB", (240, 160))
    for x in range(240):
        for y in range(160):
            image.putpixel((x, y), (x, y, (x * y) % 256))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    server, _database = start_server("sqlite", tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("VIGIL_TEST_OUTPUT", tmp_path)) / "console-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def _browser():  # type: ignore[no-untyped-def]
    from playwright.async_api import async_playwright

    manager = async_playwright()
    playwright = await manager.start()
    browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
    return manager, browser


async def _sign_in(page, url: str, name: str, password: str) -> None:  # type: ignore[no-untyped-def]
    await page.goto(f"{url}/console/login")
    await page.get_by_label("Name").fill(name)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r".*/console/queue$"))


async def test_review_reveal_and_suspend_then_rbac_and_csrf(
    live: ServerProcess, tmp_path: Path, shots: Path
) -> None:
    env = {
        "VIGIL_DATA_DIR": str(live.data_dir),
        "VIGIL_DATABASE_URL": live.database_url,
        "VIGIL_CONSOLE_PASSWORD": ADMIN_PASSWORD,
    }
    created = await vigil_in_thread("console", "create-admin", "root", env=env)
    assert created.returncode == 0, created.stdout + created.stderr
    async with server_context(live.data_dir, live.database_url) as ctx:
        await create_reviewer(ctx, "rita", REVIEWER_PASSWORD, Role.REVIEWER, "test")
        await add_policy(ctx, "test", "CSE-1", "Child sexual exploitation imagery")

    mallory = await register(live.url, tmp_path, "mallory")
    bob = await register(live.url, tmp_path, "bob")
    await mallory.send_text(bob.username, "you look mature for your age")
    await mallory.send_attachment(bob.username, _picture(), "image/png", name="me.png", caption="now you")
    events = await bob.fetch()
    accepted = await bob.report(events[-1], ReportReason.CSAM, note="he sent this", context=1)
    assert accepted.verified == [True, True]

    manager, browser = await _browser()
    try:
        context = await browser.new_context(viewport={"width": 1400, "height": 1000})
        page = await context.new_page()
        await _sign_in(page, live.url, "root", ADMIN_PASSWORD)
        row = page.locator("table.queue tbody tr").first
        await row.wait_for()
        assert "Child sexual abuse material" in await row.inner_text() and "urgent" in await row.inner_text()
        await page.screenshot(path=str(shots / "1-queue.png"), full_page=True)

        await page.get_by_role("link", name=f"#{accepted.case_id}").click()
        await page.wait_for_url(re.compile(rf".*/console/cases/{accepted.case_id}$"))
        assert await page.locator(".badge.ok", has_text="verified").count() >= 2
        assert "you look mature for your age" in await page.locator(".messages").inner_text()
        image = page.locator("img.evidence")
        assert await image.get_attribute("class") == "evidence blurred"
        await page.screenshot(path=str(shots / "2-case-blurred.png"), full_page=True)

        await page.get_by_role("button", name="Reveal image (logged)").click()
        await page.wait_for_load_state()
        # Wellness defaults hold after the reveal: greyscale and blurred, the exposure counted.
        assert await page.locator("img.evidence").get_attribute("class") == "evidence revealed blur-2"
        shown = await page.locator("img.evidence").evaluate("img => getComputedStyle(img).filter")
        assert "grayscale(1)" in shown and "blur(5px)" in shown
        assert await page.locator(".exposures").inner_text() == "1 image revealed today"
        await page.get_by_label("Revealed images: greyscale, blur").select_option(label="none")
        await page.get_by_role("button", name="Set blur").click()
        await page.wait_for_load_state()
        shown = await page.locator("img.evidence").evaluate("img => getComputedStyle(img).filter")
        assert shown == "grayscale(1)"  # less blur, never colour
        await page.get_by_role("button", name="Re-blur").click()
        await page.wait_for_load_state()
        assert "blur(12px)" in await page.locator("img.evidence").evaluate(
            "img => getComputedStyle(img).filter"
        )
        natural = await page.locator("img.evidence").evaluate("img => [img.naturalWidth, img.naturalHeight]")
        assert natural == [240, 160]  # the original, not the blurred thumbnail
        assert "evidence.image_revealed" in await page.locator("ol.audit").inner_text()
        await page.screenshot(path=str(shots / "3-case-revealed.png"), full_page=True)

        await page.get_by_label("Reason (optional, goes in the audit log)").fill("known abuse image")
        await page.get_by_label("Policy (every decision cites one)").select_option(
            label="CSE-1: Child sexual exploitation imagery"
        )
        await page.get_by_label("then claim the next case").uncheck()
        await page.get_by_role("button", name="Suspend").click()
        await page.wait_for_load_state()
        assert await page.locator(".standing-suspended").count() == 0  # the confirmation page, not yet done
        await page.get_by_role("button", name="Confirm suspend").click()
        await page.wait_for_load_state()
        assert (
            "under CSE-1: Child sexual exploitation imagery"
            in await page.locator(".decision-summary").inner_text()
        )
        assert await page.locator(".standing-suspended").inner_text() == "suspended"
        assert "case.suspend" in await page.locator("ol.audit").inner_text()
        await page.screenshot(path=str(shots / "4-suspended.png"), full_page=True)
        with pytest.raises(PolicyViolation, match="suspended"):
            await mallory.send_text(bob.username, "why aren't you answering")

        await page.goto(f"{live.url}/console/audit")
        assert "Chain intact" in await page.locator("main").inner_text()

        # a reviewer cannot reach admin pages or the audit log
        reviewer_context = await browser.new_context()
        reviewer = await reviewer_context.new_page()
        await _sign_in(reviewer, live.url, "rita", REVIEWER_PASSWORD)
        response = await reviewer.goto(f"{live.url}/console/admin/reviewers")
        assert response is not None and response.status == 403
        assert "needs the admin role" in await reviewer.locator("main").inner_text()
        response = await reviewer.goto(f"{live.url}/console/audit")
        assert response is not None and response.status == 403
        await reviewer.screenshot(path=str(shots / "5-reviewer-forbidden.png"))
        # a POST without the CSRF token is refused, even with a valid session cookie
        refused = await reviewer.request.post(
            f"{live.url}/console/cases/{accepted.case_id}/action", form={"action": "lift"}
        )
        assert refused.status == 403
        forged = await reviewer.request.post(
            f"{live.url}/console/cases/{accepted.case_id}/action", form={"action": "lift", "csrf": "guess"}
        )
        assert forged.status == 403
        with pytest.raises(PolicyViolation):  # nothing was lifted
            await mallory.send_text(bob.username, "still suspended?")

        # signed out: redirected to the sign-in page
        anonymous = await (await browser.new_context()).new_page()
        await anonymous.goto(f"{live.url}/console/cases/{accepted.case_id}")
        assert anonymous.url.endswith("/console/login")
        blocked = await anonymous.request.post(f"{live.url}/console/items/1/reveal", form={"csrf": "x"})
        assert blocked.status == 403
    finally:
        await browser.close()
        await manager.__aexit__(None, None, None)


async def test_lockout_after_repeated_failures_and_headers(live: ServerProcess) -> None:
    import httpx

    async with server_context(live.data_dir, live.database_url) as ctx:
        await create_reviewer(ctx, "lena", REVIEWER_PASSWORD, Role.LEAD, "test")
    async with httpx.AsyncClient(base_url=live.url) as http:
        page = await http.get("/console/login")
        policy = page.headers["content-security-policy"]
        # scripts only from the console's own static files (keyboard shortcuts), never inline
        assert "default-src 'none'" in policy and "script-src 'self';" in policy and "unsafe" not in policy
        assert "<script" not in page.text and " style=" not in page.text
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert found is not None
        csrf = found.group(1)
        # httpx keeps the Secure cookie to itself over plain http; send it by hand
        cookie = {"Cookie": f"vigil_console_login={page.cookies['vigil_console_login']}"}
        no_token = await http.post("/console/login", data={"username": "lena", "password": REVIEWER_PASSWORD})
        assert no_token.status_code == 403
        for _ in range(5):
            wrong = await http.post(
                "/console/login",
                data={"username": "lena", "password": "not the password", "csrf": csrf},
                headers=cookie,
            )
            assert wrong.status_code == 401
        locked = await http.post(
            "/console/login",
            data={"username": "lena", "password": REVIEWER_PASSWORD, "csrf": csrf},
            headers=cookie,
        )
        assert locked.status_code == 401 and "locked" in locked.text

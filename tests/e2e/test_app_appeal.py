"""An appeal end to end, in two browsers against a real `vigil serve`: a reviewer suspends an account in
the console; its `vigil app` shows the verified suspension notice (nothing else works: sending is
refused), and the user appeals once from the app; the reviewer finds the appeal in the console's appeals
queue with the user's words and overturns it; the app shows the verified overturn notice live, and the
account sends again. Screenshots go to the test's tmp dir (or $VIGIL_TEST_OUTPUT)."""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
from pathlib import Path
from typing import Any

import pytest
from live_server import start_server
from safety_helpers import server_context

from app_browser import CHROMIUM, PASSPHRASE, chromium, open_app, open_chat, register_in_page, start_app
from vigil.client.client import Client
from vigil.client.events import MessageEvent
from vigil.console.auth import Role, create_reviewer
from vigil.protocol.reports import ReportReason
from vigil.server.services.policies import add_policy

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install -y chromium)"
)
REVIEWER_PASSWORD = "reviewer password for tests"
APPEAL_WORDS = "It was a joke between old friends; he told me so himself."


async def _sign_in_console(page: Any, url: str) -> None:
    await page.goto(f"{url}/console/login")
    await page.get_by_label("Name").fill("rita")
    await page.get_by_label("Password").fill(REVIEWER_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r".*/console/queue$"))


async def _texts(client: Client) -> list[str]:
    return [e.text for e in await client.fetch() if isinstance(e, MessageEvent)]


async def test_suspended_user_appeals_in_the_app_and_the_overturn_shows_there(tmp_path: Path) -> None:
    shots = Path(os.environ.get("VIGIL_TEST_OUTPUT", tmp_path)) / "app-appeal-screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    server, _database = start_server("sqlite", tmp_path / "server")
    async with server_context(server.data_dir, server.database_url) as ctx:
        await create_reviewer(ctx, "rita", REVIEWER_PASSWORD, Role.REVIEWER, "test")
        await add_policy(ctx, "test", "HAR-1", "Harassment")
    mallory_app = start_app(tmp_path / "home", "mallory", server.url)
    mallory = f"mallory_{secrets.token_hex(3)}"
    bob = await Client.register(
        server.url, f"bob_{secrets.token_hex(3)}", dt.date(1985, 5, 5), tmp_path / "bob.db", PASSPHRASE
    )
    try:
        async with chromium() as browser:
            app = await open_app(browser, mallory_app)
            await register_in_page(app, mallory, "1990-02-03")
            await open_chat(app, mallory_app.base, bob.username)
            box = app.locator("#composer textarea")
            await box.fill("you will regret this")
            await box.press("Enter")
            await app.locator("#timeline").get_by_text("you will regret this").wait_for()
            [received] = [e for e in await bob.fetch() if isinstance(e, MessageEvent)]
            report = await bob.report(received, ReportReason.HARASSMENT, context=0)

            # The reviewer suspends in the console (with confirmation, citing a policy).
            console = await (await browser.new_context(viewport={"width": 1400, "height": 1000})).new_page()
            await _sign_in_console(console, server.url)
            await console.goto(f"{server.url}/console/cases/{report.case_id}")
            await console.get_by_label("Policy (every decision cites one)").select_option(
                label="HAR-1: Harassment"
            )
            await console.get_by_label("then claim the next case").uncheck()
            await console.get_by_role("button", name="Suspend").click()
            await console.get_by_role("button", name="Confirm suspend").click()
            await console.locator(".standing-suspended").wait_for()

            # The app learns it live: the sidebar points to the account page, which shows the verified
            # notice; nothing else works.
            await app.locator("#sidebar").get_by_role("link", name="Suspended: see why and appeal").click()
            await app.wait_for_url(re.compile(r".*/account$"))
            notice = app.locator(".account-notice[data-kind=action_suspend]")
            assert "your account is suspended" in await notice.inner_text()
            assert await notice.locator(".badge", has_text="verified").count() == 1
            assert "suspended" in await app.locator("#standing").inner_text()
            await app.screenshot(path=str(shots / "1-suspended.png"), full_page=True)
            await app.goto(mallory_app.base + "/")
            await app.wait_for_url(re.compile(r".*/account$"))  # home is the account page now
            await open_chat(app, mallory_app.base, bob.username)
            await app.locator("#composer textarea").fill("still here?")
            await app.locator("#composer textarea").press("Enter")
            assert "this account is suspended" in await app.locator(".flash").inner_text()
            assert await app.locator(".suspended-banner").count() == 1

            # One appeal, in the user's words; the form is gone once it is sent.
            await app.goto(f"{mallory_app.base}/account")
            await app.get_by_label("Why should the decision be looked at again?").fill(APPEAL_WORDS)
            await app.get_by_role("button", name="Send appeal").click()
            assert "against the suspend decision" in await app.locator(".flash").inner_text()
            assert await app.locator("#appeal-state").get_attribute("data-state") == "pending"
            assert await app.locator("#appeal-form").count() == 0
            await app.screenshot(path=str(shots / "2-appealed.png"), full_page=True)

            # The reviewer finds it in the appeals queue, reads the user's words and overturns.
            await console.goto(f"{server.url}/console/queue?queue=appeals")
            await (
                console.locator("table.queue tbody tr")
                .first.get_by_role("link", name=re.compile(r"^#\d+$"))
                .click()
            )
            await console.wait_for_url(re.compile(r".*/console/cases/\d+$"))
            assert APPEAL_WORDS in await console.content()
            await console.locator("#appeal-policy").select_option(label="HAR-1: Harassment")
            await console.get_by_role("button", name="Overturn (lifts the action)").click()
            await console.locator("p.appeal", has_text="overturned").wait_for()

            # The app shows the verified outcome live, on the page left open, and works again.
            outcome = app.locator("#appeal-state[data-state=overturned]")
            await outcome.wait_for()
            overturned = app.locator(".account-notice[data-kind=appeal_overturned]")
            assert "Your appeal was accepted" in await overturned.inner_text()
            assert await overturned.locator(".badge", has_text="verified").count() == 1
            await app.locator("#standing", has_text="active").wait_for()
            await app.screenshot(path=str(shots / "3-overturned.png"), full_page=True)
            await open_chat(app, mallory_app.base, bob.username)
            await app.locator("#composer textarea").fill("sorry about that")
            await app.locator("#composer textarea").press("Enter")
            await app.locator("#timeline").get_by_text("sorry about that").wait_for()
            assert await app.locator(".suspended-banner").count() == 0
            assert await _texts(bob) == ["sorry about that"]
    finally:
        await bob.close()
        mallory_app.stop()
        server.stop()

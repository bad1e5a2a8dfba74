"""A verified contact's keys change, in a real browser: bob's `vigil app` verifies alice by emoji (alice
answers with the SDK, comparing the same seven emoji), then alice links a new device. Bob's next send is
held back, as Signal does: the app warns in the conversation, sends nothing, and shows alice as changed
until bob looks at her details and accepts the new keys (after which he may verify her again); then the
message goes out to both of alice's devices."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from pathlib import Path

import pytest
from live_server import start_server

from app_browser import (
    CHROMIUM,
    PASSPHRASE,
    chromium,
    open_app,
    open_chat,
    register_in_page,
    start_app,
    type_and_enter,
)
from vigil.client.client import Client
from vigil.client.events import Event, MessageEvent, SasCompleted, SasRequested, SasShowCode

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install -y chromium)"
)


async def _until(client: Client, kind: type[Event], seconds: float = 30.0) -> Event:
    """Fetches until an event of `kind` arrives (the SDK side of the emoji verification)."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        for event in await client.fetch():
            if isinstance(event, kind):
                return event
        await asyncio.sleep(0.2)
    raise AssertionError(f"no {kind.__name__} within {seconds} s")


async def test_a_verified_contacts_new_keys_hold_sends_until_accepted(tmp_path: Path) -> None:
    server, _database = start_server("sqlite", tmp_path / "server")
    bob_app = start_app(tmp_path / "home", "bob", server.url)
    bob = f"bob_{secrets.token_hex(3)}"
    alice = await Client.register(
        server.url, f"alice_{secrets.token_hex(3)}", dt.date(1990, 1, 1), tmp_path / "a.db", PASSPHRASE
    )
    phone: Client | None = None
    try:
        async with chromium() as browser:
            page = await open_app(browser, bob_app)
            await register_in_page(page, bob, "1988-09-12")
            await alice.send_text(bob, "hi bob")
            await open_chat(page, bob_app.base, alice.username)
            await page.locator("#timeline").get_by_text("hi bob").wait_for()

            # Emoji verification: the app starts it, alice's SDK accepts; both show the same seven.
            await page.goto(f"{bob_app.base}/people/{alice.username}")
            await page.get_by_role("button", name="Verify with emoji").click()
            requested = await _until(alice, SasRequested)
            assert isinstance(requested, SasRequested)
            await alice.verification.accept_sas(requested.transaction_id)
            code = await _until(alice, SasShowCode)
            assert isinstance(code, SasShowCode)
            shown = page.locator("ol.emoji li")
            await shown.first.wait_for()
            assert [(await li.inner_text()).split(maxsplit=1)[1] for li in await shown.all()] == [
                e.description for e in code.emoji
            ]
            await page.get_by_role("button", name="They match").click()
            done = await alice.verification.confirm_sas(requested.transaction_id)
            if done is None:
                done = await _until(alice, SasCompleted)
            assert isinstance(done, SasCompleted)
            verified = page.locator("#verification-state").filter(has_text=re.compile(r"^verified$"))
            await verified.wait_for()

            # Alice's keys change (a new phone): bob's send is held back with a warning.
            phone = await alice.link_device(tmp_path / "a-phone.db", PASSPHRASE)
            await open_chat(page, bob_app.base, alice.username)
            await type_and_enter(page, "are you there?")
            flash = await page.locator(".flash").inner_text()
            assert "keys changed" in flash and "nothing was sent" in flash.lower(), flash
            warning = page.locator("#timeline .notice.key-change")
            assert "Sending is paused" in await warning.inner_text()
            assert "are you there?" not in await page.locator("#timeline").inner_text()
            assert [e for e in await alice.fetch() if isinstance(e, MessageEvent)] == []
            await type_and_enter(page, "hello?")  # and again: still held back
            assert "keys changed" in await page.locator(".flash").inner_text()

            # Bob looks at alice's details: changed, with the new keys to accept (or verify again).
            await page.goto(f"{bob_app.base}/people/{alice.username}")
            assert await page.locator("#verification-state").inner_text() == "changed"
            await page.get_by_role("button", name="Accept the new keys").click()
            await page.locator("#verification-state", has_text="unverified").wait_for()
            assert await page.get_by_role("button", name="Verify with emoji").count() == 1

            await open_chat(page, bob_app.base, alice.username)
            await type_and_enter(page, "welcome back")
            await page.locator("#timeline").get_by_text("welcome back").wait_for()
            for device in (alice, phone):
                texts = [e.text for e in await device.fetch() if isinstance(e, MessageEvent)]
                assert texts[-1:] == ["welcome back"], texts
    finally:
        await alice.close()
        if phone is not None:
            await phone.close()
        bob_app.stop()
        server.stop()

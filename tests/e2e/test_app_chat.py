"""`vigil app` in a real browser: two real `vigil app` processes (two profiles) against a real `vigil serve`,
each driven in its own Chromium context. They register through the page, chat live both ways (Enter sends),
talk in a group found by its name, verify each other by emoji (both pages show the same seven), and one
reports a message after seeing exactly what will be shared, which yields a verified case on the server. A
plaintext canary typed into the app never reaches the server's database, blobs or log. The launch key is
checked on every request. Screenshots of each screen go to the test's tmp dir (or $VIGIL_TEST_OUTPUT)."""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from live_server import start_server

from app_browser import (
    CHROMIUM,
    PASSPHRASE,
    attach,
    chromium,
    open_app,
    open_chat,
    register_in_page,
    shapes,
    start_app,
    type_and_enter,
)
from vigil.client.client import Client
from vigil.safety.hashing.pdq import hash_image
from vigil.server.hashlist_keys import load_signing_key, load_voucher_public_key
from vigil.server.offline import offline_context
from vigil.server.services import hashlist
from vigil.server.settings import Settings

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install -y chromium)"
)


async def _publish_known_image(server, image: bytes) -> None:  # type: ignore[no-untyped-def]
    """The safety team's signed list holds the image's PDQ hash (the apps pin its key on first use)."""
    async with offline_context(Settings(data_dir=server.data_dir, database_url=server.database_url)) as team:
        await hashlist.create_bank(team, "app-test-bank")
        entry = f"pdq {hash_image(image).hash.hex()}"
        assert await hashlist.import_entries(team, "app-test-bank", entry, "threatexchange") == 1
        signing = load_signing_key(team.settings)
        await hashlist.publish(
            team, signing, load_voucher_public_key(team.settings), issued_at=int(time.time())
        )


def _shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("VIGIL_TEST_OUTPUT", tmp_path)) / "app-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def test_two_people_chat_group_verify_report_and_no_plaintext_on_server(tmp_path: Path) -> None:
    shots = _shots(tmp_path)
    server, _database = start_server("sqlite", tmp_path / "server")
    alice_app = start_app(tmp_path / "home", "alice", server.url)
    bob_app = start_app(tmp_path / "home", "bob", server.url)
    alice, bob = f"alice_{secrets.token_hex(3)}", f"bob_{secrets.token_hex(3)}"
    canary = f"CANARY-APP-{secrets.token_hex(8)}"
    known, harmless = shapes(2, seed=31)
    await _publish_known_image(server, known)
    try:
        # the launch key: without it (or its cookie) nothing answers; another Host is refused
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{alice_app.base}/")).status_code == 403
            assert (await http.get(f"{alice_app.base}/?key=wrong")).status_code == 403
            rebound = await http.get(
                f"{alice_app.base}/", headers={"Host": f"evil.example:{alice_app.base.rsplit(':', 1)[1]}"}
            )
            assert rebound.status_code == 421
        async with chromium() as browser:
            pa, pb = await open_app(browser, alice_app), await open_app(browser, bob_app)
            assert "key=" not in pa.url  # the key left the address bar once the cookie was set
            await pa.screenshot(path=str(shots / "01-register.png"))
            await register_in_page(pa, alice, "1990-04-01")
            await register_in_page(pb, bob, "1988-09-12")

            # 1:1, live both ways: bob's open page shows alice's message without a reload
            await open_chat(pb, bob_app.base, alice)
            await open_chat(pa, alice_app.base, bob)
            await type_and_enter(pa, f"hi bob, here is the canary {canary}")
            await pb.locator("#timeline").get_by_text(canary).wait_for()
            await type_and_enter(pb, "hello alice!")
            await pa.locator("#timeline").get_by_text("hello alice!").wait_for()
            await type_and_enter(pa, "send me your address, now")
            await pb.locator("#timeline").get_by_text("send me your address, now").wait_for()
            await pa.screenshot(path=str(shots / "02-conversation.png"))
            # known-image matching as in the SDK: the listed image is not sent, and alice is told neutrally
            await attach(pa, known, "known.png")
            withheld = pa.locator("#timeline .notice.withheld")
            assert (
                await withheld.inner_text()
                == "This image could not be sent. " + await withheld.locator(".time").inner_text()
            )
            await attach(pa, harmless, "harmless.png")
            await pb.locator("#timeline img.picture").wait_for()  # adults, blur off: shown plainly
            assert await pb.locator("#timeline img.picture").count() == 1  # only the harmless one arrived
            # ... and a listed image sent by a client that does not check (no pinned list) is not shown
            mallory = await Client.register(
                server.url,
                f"mallory_{secrets.token_hex(3)}",
                dt.date(1980, 1, 1),
                tmp_path / "m.db",
                PASSPHRASE,
            )
            await mallory.send_attachment(bob, known, "image/png", name="known.png")
            await mallory.close()
            await open_chat(pb, bob_app.base, mallory.username)
            withheld_in = pb.locator("#timeline .msg p.withheld", has_text="This image could not be shown.")
            await withheld_in.wait_for()
            assert await pb.locator("#timeline img").count() == 0
            await open_chat(pb, bob_app.base, alice)
            # an empty message is not sent
            await type_and_enter(pa, "   ")
            assert "Type a message" in await pa.locator(".flash").inner_text()

            # a group by name: bob sees it in his list under its name and reads it live
            await pa.goto(f"{alice_app.base}/new")
            await pa.screenshot(path=str(shots / "03-new-chat.png"))
            await pa.get_by_label("New group named").fill("Book club")
            await pa.get_by_label("Members").fill(bob)
            await pa.get_by_role("button", name="Create group").click()
            await pa.wait_for_selector("h1:has-text('# Book club')")
            await type_and_enter(pa, "first chapter by friday?")
            await pb.locator("#sidebar .chat", has_text="Book club").wait_for()
            await pb.locator("#sidebar .chat", has_text="Book club").locator("a").click()
            await pb.locator("#timeline").get_by_text("first chapter by friday?").wait_for()
            await type_and_enter(pb, "deal")
            await pa.locator("#timeline").get_by_text("deal").wait_for()
            await pb.screenshot(path=str(shots / "04-group.png"))
            await pa.get_by_role("link", name="Group details").click()
            await pa.wait_for_selector("ul.members")
            assert bob in await pa.locator("ul.members").inner_text()
            await pa.screenshot(path=str(shots / "05-group-details.png"))
            await pa.get_by_label("Name").fill("Book club 2027")
            await pa.get_by_role("button", name="Rename").click()
            await pb.locator(
                "#sidebar .chat", has_text="Book club 2027"
            ).wait_for()  # members see the new name
            members = pa.locator("ul.members li", has_text=bob)
            await members.get_by_role("button", name="Remove").click()
            await pa.wait_for_selector("ul.members")
            assert bob not in await pa.locator("ul.members").inner_text()

            # SAS: both pages show the same emoji, both confirm, both verified
            await pa.goto(f"{alice_app.base}/people/{bob}")
            await pb.goto(f"{bob_app.base}/people/{alice}")
            await pa.get_by_role("button", name="Verify with emoji").click()
            await pb.get_by_role("button", name="Start").click()
            await pa.locator("ol.emoji").wait_for()
            await pb.locator("ol.emoji").wait_for()
            alice_emoji = await pa.locator("ol.emoji").inner_text()
            assert alice_emoji == await pb.locator("ol.emoji").inner_text()
            assert await pa.locator("ol.emoji li").count() == 7
            await pa.screenshot(path=str(shots / "06-sas-compare.png"))
            await pa.get_by_role("button", name="They match").click()
            await pa.get_by_text(f"Waiting for {bob}").wait_for()
            await pb.get_by_role("button", name="They match").click()
            for page, name in ((pa, "alice"), (pb, "bob")):
                state = page.locator("#verification-state").filter(has_text=re.compile(r"^verified$"))
                try:
                    await state.wait_for(timeout=20_000)
                except Exception:
                    await page.screenshot(path=str(shots / f"sas-failed-{name}.png"))
                    raise
            await pb.screenshot(path=str(shots / "07-verified.png"))
            assert len((await pa.locator(".safety-number").inner_text()).replace(" ", "")) == 60

            # report: the page lists exactly what will be shared, then a verified case exists
            await open_chat(pb, bob_app.base, alice)
            reported = pb.locator(".msg", has_text="send me your address, now")
            await reported.get_by_role("link", name="Report").click()
            shared = [await li.inner_text() for li in await pb.locator("ol.to-share li").all()]
            assert len(shared) == 3  # the reported message and the two before it (all there are)
            assert "send me your address, now" in shared[-1] and canary in shared[0]
            assert "hello alice!" in shared[1]
            await pb.screenshot(path=str(shots / "08-report-preview.png"))
            await pb.get_by_label("Reason").select_option("harassment")
            await pb.get_by_role("button", name="Send report").click()
            flash = await pb.locator(".flash").inner_text()
            found = re.search(r"case #(\d+): 3 of 3 messages were verified", flash)
            assert found is not None, flash
            assert f"{alice} is blocked" in flash
            await pb.screenshot(path=str(shots / "09-reported.png"))

            # a restart: the next launch has a new key; the profile unlocks only with its passphrase
            alice_app.stop()
            alice_app = start_app(tmp_path / "home", "alice", server.url)
            pa = await open_app(browser, alice_app)
            await pa.get_by_label("Passphrase").fill("not the passphrase")
            await pa.get_by_role("button", name="Unlock").click()
            assert "did not open this profile" in await pa.locator(".error").inner_text()
            await pa.get_by_label("Passphrase").fill(PASSPHRASE)
            await pa.get_by_role("button", name="Unlock").click()
            await pa.locator("#sidebar .chat", has_text="Book club 2027").wait_for()
            await open_chat(pa, alice_app.base, bob)
            assert canary in await pa.locator("#timeline").inner_text()  # history kept on the device
            assert await pa.locator("#timeline img.picture").count() == 1  # the image sent before
            await pa.screenshot(path=str(shots / "10-unlocked-after-restart.png"))
    finally:
        alice_app.stop()
        bob_app.stop()
        server.stop()

    database = server.data_dir / "vigil.db"
    with sqlite3.connect(database) as db:
        (verified,) = db.execute("SELECT verified FROM cases WHERE id = ?", (int(found.group(1)),)).fetchone()
        items = db.execute(
            "SELECT ri.verified FROM report_items ri JOIN reports r ON r.id = ri.report_id "
            "WHERE r.case_id = ? ORDER BY ri.position",
            (int(found.group(1)),),
        ).fetchall()
    assert verified == 1 and [row[0] for row in items] == [1, 1, 1]
    surfaces = {
        "database": b"".join(p.read_bytes() for p in database.parent.glob("vigil.db*")),
        "blobs": b"".join(p.read_bytes() for p in (server.data_dir / "blobs").rglob("*") if p.is_file()),
        "server log": server.log_path.read_bytes(),
        "alice's store": b"".join(p.read_bytes() for p in (tmp_path / "home" / "profiles").glob("alice.db*")),
    }
    assert len(surfaces["server log"]) > 500
    for name, data in surfaces.items():
        assert canary.encode() not in data, f"the canary reached the {name}"

"""`vigil app` protecting a minor, in a real browser against a real server with the real on-device classifier.

An adult cannot message a 14-year-old they are not connected to (the app says so in plain words and points
to a contact request); the minor sees the request with the rules explained and accepts it. The adult then
sends an ordinary picture. The minor's threshold is set just below the classifier's measured score for it
(so the real model flags it; the default threshold's false-positive rate is measured in
benchmarks/nudity_classifier.py), and the minor sees it blurred with a warning, "view anyway" behind a
second confirmation, and "get help / report". Sending it back, the minor is asked to confirm first. The
adult, with the blur off and the same threshold, sees it plainly; with the blur turned on, blurred."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from live_server import start_server

from app_browser import (
    CHROMIUM,
    attach,
    chromium,
    open_app,
    open_chat,
    picture,
    register_in_page,
    start_app,
    type_and_enter,
)
from vigil.app.nudity import load_classifier

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install -y chromium)"
)


async def _set_threshold(page, base: str, threshold: float, *, blur: bool | None = None) -> None:  # type: ignore[no-untyped-def]
    await page.goto(f"{base}/settings")
    await page.get_by_label("Sensitivity threshold").fill(repr(threshold))
    if blur is not None:
        await page.get_by_label("Blur images that may show nudity").set_checked(blur)
    await page.get_by_role("button", name="Save").click()
    assert "Settings saved" in await page.locator(".flash").inner_text()


async def test_minor_contact_request_then_flagged_image_blurred_for_minor_plain_for_adult(
    tmp_path: Path,
) -> None:
    classifier = load_classifier()
    assert classifier is not None, "the nudity extra (nudenet, onnxruntime) is part of the dev install"
    image = picture(seed=7)
    measured = classifier.score(image).score
    assert 0.0 < measured < 0.45  # an ordinary picture: below the default threshold
    just_below = measured * 0.95

    shots = Path(os.environ.get("VIGIL_TEST_OUTPUT", tmp_path)) / "app-screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    server, _database = start_server("sqlite", tmp_path / "server")
    adult_app = start_app(tmp_path / "home", "sam", server.url)
    teen_app = start_app(tmp_path / "home", "mia", server.url)
    adult, teen = "sam_adult", "mia_teen"
    try:
        async with chromium() as browser:
            pa, pt = await open_app(browser, adult_app), await open_app(browser, teen_app)
            await register_in_page(pa, adult, "1985-02-03")
            await register_in_page(pt, teen, "2012-05-05")
            assert "under 18" in await pt.locator("header .who").inner_text()

            # a stranger cannot message the minor; the app says what to do instead
            await open_chat(pa, adult_app.base, teen)
            await type_and_enter(pa, "hey, are you free?")
            refusal = await pa.locator(".flash").inner_text()
            assert "can't message this account yet" in refusal and "contact request" in refusal
            await pa.goto(f"{adult_app.base}/new")
            await pa.get_by_label("Ask to connect").fill(teen)
            await pa.get_by_role("button", name="Send request").click()
            assert f"Asked {teen} to connect" in await pa.locator(".flash").inner_text()

            # the minor sees the request, the rules in plain words, and answers it
            request = pt.locator("#sidebar li.request", has_text=adult)
            await request.wait_for()
            notice = pt.locator("#sidebar .safety-notice", has_text=adult)
            await notice.wait_for()  # the server's signed notice about an unconnected adult, checked here
            assert await notice.locator(".badge.ok").inner_text() == "verified"
            assert await notice.get_by_role("button", name="Block").count() == 1
            rules = await pt.locator("#sidebar p.rules").inner_text()
            assert "under 18 can only get messages from people they have accepted" in rules
            await pt.screenshot(path=str(shots / "10-minor-contact-request.png"))
            await request.get_by_role("button", name="Accept").click()
            assert f"You and {adult} are connected" in await pt.locator(".flash").inner_text()

            missing = await pt.goto(f"{teen_app.base}/c/{adult}/report/not-a-message")
            assert missing is not None and missing.status == 404
            # the adult's picture: flagged on the minor's device, blurred with a warning
            await _set_threshold(pt, teen_app.base, just_below)
            await open_chat(pt, teen_app.base, adult)
            await open_chat(pa, adult_app.base, teen)
            await type_and_enter(pa, "look at this sunset")
            await attach(pa, image)
            assert await pa.locator("#timeline img.picture").count() == 1  # the sender sees it plainly
            sensitive = pt.locator("#timeline .sensitive")
            await sensitive.wait_for()
            assert await sensitive.locator("img.blurred").count() == 1
            assert await pt.locator("#timeline img.picture").count() == 0
            assert "may show nudity" in await sensitive.inner_text()
            assert await sensitive.get_by_role("link", name="Get help / report").count() == 1
            await pt.screenshot(path=str(shots / "11-minor-blurred.png"))

            # "view anyway" asks a second time before showing it
            await sensitive.get_by_role("link", name="View anyway").click()
            await pt.get_by_role("button", name="Yes, show it").wait_for()
            await pt.screenshot(path=str(shots / "12-minor-view-anyway.png"))
            await pt.get_by_role("button", name="Yes, show it").click()
            await pt.locator("#timeline img.picture").wait_for()
            assert await pt.locator("#timeline img.blurred").count() == 0
            natural = await pt.locator("#timeline img.picture").evaluate("img => img.naturalWidth")
            assert natural == 240

            # the minor sending a flagged picture is asked first, with a line on why
            await attach(pt, image)
            assert "may show nudity" in await pt.locator("main").inner_text()
            await pt.screenshot(path=str(shots / "13-minor-confirm-send.png"))
            await pt.get_by_role("button", name="Send anyway").click()
            await pt.wait_for_load_state()
            assert await pt.locator("#timeline img.picture").count() == 2

            # the adult, blur off: the same picture, flagged at the same threshold, is shown plainly
            await _set_threshold(pa, adult_app.base, just_below, blur=False)
            await open_chat(pa, adult_app.base, teen)
            await pa.locator("#timeline .msg:not(.mine) img.picture").wait_for()
            assert await pa.locator("#timeline img.blurred").count() == 0
            await pa.screenshot(path=str(shots / "14-adult-blur-off.png"))
            # with the blur on, blurred like the minor's
            await _set_threshold(pa, adult_app.base, just_below, blur=True)
            await open_chat(pa, adult_app.base, teen)
            assert await pa.locator("#timeline .msg:not(.mine) img.blurred").count() == 1
            await pa.goto(f"{adult_app.base}/settings")
            await pa.screenshot(path=str(shots / "15-settings.png"))
    finally:
        adult_app.stop()
        teen_app.stop()
        server.stop()

"""Shared by the `vigil app` browser tests: a real `vigil app --no-browser` process per profile (its URL
read from its first line of output), Debian's Chromium via Playwright, and the steps every test repeats
(register through the page, open a chat, wait for live text)."""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
PASSPHRASE = "app passphrase for tests"
URL_LINE = re.compile(r"(http://127\.0\.0\.1:\d+/\?key=\S+)")
LIVE_TIMEOUT_MS = 30_000  # the shared CI machine can be slow


@dataclass
class AppProcess:
    process: subprocess.Popen[str]
    url: str  # carries the launch key
    log: Path

    @property
    def base(self) -> str:
        return self.url.split("/?", 1)[0]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_app(home: Path, profile: str, server_url: str) -> AppProcess:
    log = home / f"app-{profile}.log"
    home.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "vigil", "app", "--no-browser", "--profile", profile, "--server", server_url],
        env={**os.environ, "VIGIL_HOME": str(home), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=open(log, "w"),  # the child holds it
        text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        found = URL_LINE.search(line)
        if found:
            return AppProcess(process, found.group(1), log)
        if process.poll() is not None:
            break
    process.kill()
    raise RuntimeError(f"vigil app did not print its address: {log.read_text()[-2000:]}")


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


async def open_app(browser: Any, app: AppProcess) -> Any:
    context = await browser.new_context(viewport={"width": 1200, "height": 800})
    page = await context.new_page()
    page.set_default_timeout(LIVE_TIMEOUT_MS)
    await page.goto(app.url)
    return page


async def register_in_page(page: Any, username: str, birth_date: str) -> None:
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Birth date").fill(birth_date)
    await page.get_by_label("Passphrase").fill(PASSPHRASE)
    await page.get_by_role("button", name="Create account").click()
    await page.wait_for_selector(f"header .who:has-text('{username}')")


async def open_chat(page: Any, base: str, conversation: str) -> None:
    await page.goto(f"{base}/c/{conversation}")
    await page.wait_for_selector("#composer textarea")


async def type_and_enter(page: Any, text: str) -> None:
    box = page.locator("#composer textarea")
    await box.fill(text)
    await box.press("Enter")
    await page.wait_for_load_state()


def shapes(count: int, seed: int) -> list[bytes]:
    """Shapes on a background, kept only when their PDQ quality is high enough to be matched."""
    import numpy as np
    from PIL import ImageDraw

    from vigil.safety.hashing.pdq import hash_image

    rng = np.random.default_rng(seed)
    out: list[bytes] = []
    while len(out) < count:
        image = Image.new("RGB", (96, 96), tuple(int(x) for x in rng.integers(0, 256, 3)))
        draw = ImageDraw.Draw(image)
        for _ in range(8):
            x0, y0 = (int(v) for v in rng.integers(0, 80, 2))
            box = [x0, y0, x0 + int(rng.integers(8, 60)), y0 + int(rng.integers(8, 60))]
            colour = tuple(int(x) for x in rng.integers(0, 256, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        if hash_image(buffer.getvalue()).quality >= 50:
            out.append(buffer.getvalue())
    return out


async def attach(page: Any, data: bytes, name: str = "photo.png") -> None:
    await page.locator("input[name=image]").set_input_files(
        files=[{"name": name, "mimeType": "image/png", "buffer": data}]
    )
    await page.get_by_role("button", name="Send").click()
    await page.wait_for_load_state()


def picture(seed: int = 0) -> bytes:
    """An ordinary picture (a colour gradient): nothing a nudity detector should be sure about."""
    image = Image.new("RGB", (240, 160))
    for x in range(240):
        for y in range(160):
            image.putpixel((x, y), ((x + seed) % 256, y, (x * y + seed) % 256))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()

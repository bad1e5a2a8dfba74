"""The console's image-match section: records about a case's subject, blurred until a logged reveal,
and "Open pending vouchers" for leads (through the standalone console app, no browser)."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path

from image_match_records import record_image_match
from PIL import Image
from sqlalchemy import select
from starlette.testclient import TestClient

from vigil.console.app import create_console_app
from vigil.console.auth import Role, create_reviewer
from vigil.protocol.vouchers import seal_voucher
from vigil.protocol.wire import AgeBand
from vigil.server.db.accounts import UserRow
from vigil.server.db.audit import AuditRow
from vigil.server.db.cases import QueueFilter
from vigil.server.hashlist_keys import load_voucher_keypair
from vigil.server.offline import offline_context
from vigil.server.services.cases import queue
from vigil.server.settings import Settings

PASSWORD = "a password for the tests"


def _picture() -> bytes:
    image = Image.new("RGB", (64, 48))
    for x in range(64):
        for y in range(48):
            image.putpixel((x, y), (x * 4, y * 5, (x * y) % 256))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


async def _seed(settings: Settings, image: bytes) -> tuple[int, int]:
    """A lead, a reviewer, an account and one image match about it (as a profile-photo match records it)."""
    async with offline_context(settings) as ctx:
        await create_reviewer(ctx, "lena", PASSWORD, Role.LEAD, "test")
        await create_reviewer(ctx, "rita", PASSWORD, Role.REVIEWER, "test")
        async with ctx.sessions() as session, session.begin():
            user = UserRow(username="mallory", age_band=AgeBand.ADULT.value, created_at_ms=1)
            session.add(user)
            await session.flush()
            match_id = await record_image_match(
                session,
                subject_user_id=user.id,
                sealed_image=seal_voucher(load_voucher_keypair(settings).public, image),
                now_ms=ctx.clock_ms(),
                source="profile_photo",
                bank="known-abuse",
                entry_hash="ab" * 32,
                pdq="ab" * 32,
                distance=3,
                verification="matched on the server (profile photo upload)",
            )
        (case,) = await queue(ctx, QueueFilter())
        return case.id, match_id


async def _audit_actions(settings: Settings) -> list[tuple[str, str]]:
    async with offline_context(settings) as ctx, ctx.sessions() as session:
        rows = await session.scalars(select(AuditRow).order_by(AuditRow.id))
        return [(r.actor, r.action) for r in rows]


def _sign_in(http: TestClient, name: str) -> str:
    """Signs in; returns the session's CSRF token."""
    token = re.search(r'name="csrf" value="([^"]+)"', http.get("/login").text)
    assert token is not None
    signed = http.post("/login", data={"csrf": token[1], "username": name, "password": PASSWORD})
    assert signed.status_code == 200, signed.text
    found = re.search(r'name="csrf" value="([^"]+)"', signed.text)
    assert found is not None
    return found[1]


def test_case_page_lists_image_matches_blurred_until_a_logged_reveal(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    image = _picture()
    case_id, match_id = asyncio.run(_seed(settings, image))

    with TestClient(create_console_app(settings), base_url="https://console.test") as http:
        csrf = _sign_in(http, "rita")
        page = http.get(f"/cases/{case_id}")
        assert page.status_code == 200
        assert f'id="match-{match_id}"' in page.text and "known-abuse" in page.text
        assert "distance 3" in page.text and "✓ verified" in page.text
        assert f"/image-matches/{match_id}/image" in page.text and "Reveal image (logged)" in page.text
        assert "Open pending vouchers" not in http.get("/queue").text  # reviewers do not open vouchers

        blurred = http.get(f"/image-matches/{match_id}/image")
        assert blurred.status_code == 200 and blurred.content != image
        with Image.open(io.BytesIO(blurred.content)) as shown:
            assert shown.mode == "L"  # greyscale
        # No CSRF token, no reveal.
        assert http.post(f"/image-matches/{match_id}/reveal", data={"case": str(case_id)}).status_code == 403
        assert http.get(f"/image-matches/{match_id}/image").content == blurred.content
        revealed = http.post(f"/image-matches/{match_id}/reveal", data={"csrf": csrf, "case": str(case_id)})
        assert revealed.status_code == 200 and "Revealed by you" in revealed.text
        assert http.get(f"/image-matches/{match_id}/image").content == image
        # Only reviewers' leads open vouchers.
        assert http.post("/vouchers/open", data={"csrf": csrf}).status_code == 403

    actions = asyncio.run(_audit_actions(settings))
    assert any(a == "case.image_matches_viewed" and "rita" in actor for actor, a in actions)
    assert any(a == "image_match.image_revealed" and "rita" in actor for actor, a in actions)


def test_leads_open_pending_vouchers_from_the_queue(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    asyncio.run(_seed(settings, _picture()))
    with TestClient(create_console_app(settings), base_url="https://console.test") as http:
        csrf = _sign_in(http, "lena")
        assert "Open pending vouchers" in http.get("/queue").text
        assert http.post("/vouchers/open", data={}).status_code == 403  # CSRF
        opened = http.post("/vouchers/open", data={"csrf": csrf})
        assert opened.status_code == 200 and "Opened 0 pending voucher(s)." in opened.text
    actions = asyncio.run(_audit_actions(settings))
    assert any(a == "vouchers.opened" and "lena" in actor for actor, a in actions)

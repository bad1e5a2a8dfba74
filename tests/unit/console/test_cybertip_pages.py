"""The console's CyberTipline form and preview in-process, on a case seeded through the server's own
repositories with a verified reported image and a verified image match: the files offered, the reveal that
turns `fileViewedByEsp` on for exactly that file, the documents shown escaped and as built, images kept
blurred after a reveal, the choices carried back by "Change", refusals of values outside the schema's lists,
and nothing stored or sent by a preview. (Submission against a stand-in process is in the browser test.)"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from cybertip_helpers import T0, seed_csam_case
from sqlalchemy import select

from vigil.console.app import create_console_app
from vigil.console.auth import Role, create_reviewer, sign_in
from vigil.protocol.reports import ReportReason
from vigil.server.context import ServerContext
from vigil.server.db.accounts import UserRow
from vigil.server.db.audit import AuditRow
from vigil.server.services import cybertip_filing
from vigil.server.services.cases import open_or_join_case
from vigil.server.settings import Settings

PASSWORD = "a password for the tests"
INCIDENT = "Child Pornography (possession, manufacture, and distribution)"


@pytest.fixture
async def ctx(tmp_path: Path) -> AsyncIterator[ServerContext]:
    async with ServerContext.open(Settings(data_dir=tmp_path), clock_ms=lambda: T0 + 3_600_000) as context:
        await create_reviewer(context, "lena", PASSWORD, Role.LEAD, "test")
        await create_reviewer(context, "rita", PASSWORD, Role.REVIEWER, "test")
        yield context


async def _console(ctx: ServerContext, name: str) -> tuple[httpx.AsyncClient, str]:
    me = await sign_in(ctx, name, PASSWORD)
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_console_app(ctx.settings, context=lambda: ctx)),
        base_url="https://console.test",
        cookies={"vigil_console": me.token},
    )
    return client, me.csrf


def _documents(page: str) -> list[str]:
    """The documents in the preview, unescaped (they are shown escaped inside <pre>)."""
    return [
        html.unescape(d)
        for d in re.findall(r'<pre class="document[^"]*"><code>(.*?)</code></pre>', page, re.S)
    ]


async def test_form_and_preview_of_a_case_with_a_reported_image_and_an_image_match(
    ctx: ServerContext,
) -> None:
    seeded = await seed_csam_case(ctx, "pages")
    item_key, match_key = f"item:{seeded.item_id}", f"match:{seeded.match_id}"
    lead, csrf = await _console(ctx, "lena")
    async with lead:
        case_page = await lead.get(f"/cases/{seeded.case_id}")
        assert case_page.status_code == 200
        assert (
            f'href="/cases/{seeded.case_id}/cybertip"' in case_page.text
            and "Not reported to NCMEC" in case_page.text
        )

        form = await lead.get(f"/cases/{seeded.case_id}/cybertip")
        assert form.status_code == 200
        assert f'name="class-{item_key}"' in form.text and f'name="class-{match_key}"' in form.text
        assert form.text.count("Nobody has revealed this file") == 2
        assert f'src="/items/{seeded.item_id}/image?blurred=1"' in form.text

        # the lead reveals the reported image (audited): only that file becomes "viewed by the ESP"
        revealed = await lead.post(f"/items/{seeded.item_id}/reveal", data={"csrf": csrf})
        assert revealed.status_code == 303
        form = await lead.get(f"/cases/{seeded.case_id}/cybertip")
        assert (
            "Revealed by reviewer:lena" in form.text and form.text.count("Nobody has revealed this file") == 1
        )
        original = await lead.get(f"/items/{seeded.item_id}/image")
        assert original.content == seeded.item_image  # revealed on the case page ...
        kept_blurred = await lead.get(f"/items/{seeded.item_id}/image?blurred=1")
        assert (
            kept_blurred.headers["content-type"] == "image/png" and kept_blurred.content != seeded.item_image
        )

        choices = {
            "csrf": csrf,
            "incident_type": INCIDENT,
            f"class-{item_key}": "A2",
            f"class-{match_key}": "B1",
            f"ann-{match_key}": ["generative_ai", "viral"],
        }
        preview = await lead.post(f"/cases/{seeded.case_id}/cybertip/preview", data=choices)
        assert preview.status_code == 200, preview.text
        assert "&lt;incidentType&gt;" in preview.text  # shown as text, escaped
        report, *files = _documents(preview.text)
        assert f"<incidentType>{INCIDENT}</incidentType>" in report
        assert f"<screenName>{seeded.subject}</screenName>" in report
        by_hash = {
            hashlib.sha256(image).hexdigest(): image for image in (seeded.item_image, seeded.match_image)
        }
        details = {by_hash[re.search(r'hashType="SHA256">([0-9a-f]{64})<', f)[1]]: f for f in files}  # type: ignore[index]
        item_details, match_details = details[seeded.item_image], details[seeded.match_image]
        assert "<fileViewedByEsp>true</fileViewedByEsp>" in item_details
        assert "<industryClassification>A2</industryClassification>" in item_details
        assert "<fileAnnotations>" not in item_details
        assert "<fileViewedByEsp>false</fileViewedByEsp>" in match_details  # nobody opened the match
        assert "<industryClassification>B1</industryClassification>" in match_details
        assert re.search(r"<fileAnnotations><viral ?/><generativeAi ?/></fileAnnotations>", match_details)
        assert preview.text.count("?blurred=1") == 2 and 'class="evidence blurred"' in preview.text
        for name, value in ((f"class-{item_key}", "A2"), (f"ann-{match_key}", "generative_ai")):
            assert f'<input type="hidden" name="{name}" value="{value}">' in preview.text

        # "Change" goes back to the form with the choices kept
        back = await lead.get(
            f"/cases/{seeded.case_id}/cybertip",
            params=[
                ("incident_type", INCIDENT),
                (f"class-{item_key}", "A2"),
                (f"class-{match_key}", "B1"),
                (f"ann-{match_key}", "viral"),
            ],
        )
        assert back.status_code == 200
        assert re.search(r'<option value="A2" selected>', back.text) and re.search(
            r'<option value="B1" selected>', back.text
        )
        assert re.search(r'value="viral" checked', back.text) and not re.search(
            r'value="infant" checked', back.text
        )

        # values outside the schema's lists are refused before anything is built
        for field, bad in (("incident_type", "Something else"), (f"class-{item_key}", "C3")):
            refused = await lead.post(
                f"/cases/{seeded.case_id}/cybertip/preview", data={**choices, field: bad}
            )
            assert refused.status_code == 400, (field, refused.text)
        refused = await lead.post(
            f"/cases/{seeded.case_id}/cybertip/preview", data={**choices, f"ann-{match_key}": "onclick"}
        )
        assert refused.status_code == 400 and "unknown annotation" in refused.text

    assert await cybertip_filing.list_filings(ctx) == []  # a preview stores and sends nothing
    async with ctx.sessions() as session:
        actions = [(r.actor, r.action) for r in await session.scalars(select(AuditRow))]
    assert ("reviewer:lena", "cybertip.previewed") in actions
    assert ("reviewer:lena", "evidence.image_revealed") in actions

    reviewer, reviewer_csrf = await _console(ctx, "rita")
    async with reviewer:
        page = await reviewer.get(f"/cases/{seeded.case_id}")
        assert "/cybertip" not in page.text.replace("/cybertip/reports", "") and "A lead files" in page.text
        assert (await reviewer.get(f"/cases/{seeded.case_id}/cybertip")).status_code == 403
        refused = await reviewer.post(
            f"/cases/{seeded.case_id}/cybertip", data={**choices, "csrf": reviewer_csrf}
        )
        assert refused.status_code == 403 and "needs the lead role" in refused.text


async def test_a_case_without_verified_evidence_cannot_be_filed(ctx: ServerContext) -> None:
    async with ctx.sessions() as session, session.begin():
        subject = UserRow(username="claimed", age_band="adult", created_at_ms=T0)
        session.add(subject)
        await session.flush()
        case = await open_or_join_case(session, subject, ReportReason.CSAM, 60, False, T0)
    lead, _csrf = await _console(ctx, "lena")
    async with lead:
        page = await lead.get(f"/cases/{case.id}")
        assert page.status_code == 200 and "Report to NCMEC" not in page.text
        assert "needs verified evidence of child sexual abuse material" in page.text
        form = await lead.get(f"/cases/{case.id}/cybertip")
        assert form.status_code == 400 and "no verified CSAM evidence" in form.text

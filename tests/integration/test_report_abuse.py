"""Report abuse through a real server (SQLite and PostgreSQL) and its mounted console: a bare claim never
makes a case urgent; a reviewer marks a reporter as acting in bad faith from the case page (audited), and
that reporter's later unverified claims rank low while their verified evidence keeps its rank."""

from __future__ import annotations

from pathlib import Path

from console_client import PASSWORD, Console
from helpers import register, unique
from safety_helpers import server_context

from vigil.client.events import MessageEvent
from vigil.console.auth import Role, create_reviewer
from vigil.protocol.reports import ReportReason
from vigil.server.db.cases import QueueFilter
from vigil.server.services import cases
from vigil.server.services.audit import entries_for, verify_chain


async def _case_of(ctx, subject: str) -> cases.CaseSummary:  # type: ignore[no-untyped-def]
    [case] = [c for c in await cases.queue(ctx, QueueFilter()) if c.subject == subject]
    return case


async def test_a_reviewer_marks_a_bad_faith_reporter_and_their_later_claims_rank_low(
    server, tmp_path: Path
) -> None:
    liar = await register(server.url, tmp_path, "liar")
    first, second, sender = [await register(server.url, tmp_path, n) for n in ("first", "second", "sender")]
    rita, lena = unique("rita"), unique("lena")
    async with server_context(server.data_dir, server.database_url) as ctx:
        await create_reviewer(ctx, rita, PASSWORD, Role.REVIEWER, "test")
        await create_reviewer(ctx, lena, PASSWORD, Role.LEAD, "test")

    # A bare claim of the gravest kind ranks "high", never "urgent", on its own.
    claim = await liar.report_account(first.username, ReportReason.CSAM, block=False)
    async with server_context(server.data_dir, server.database_url) as ctx:
        case = await _case_of(ctx, first.username)
        assert case.id == claim.case_id and (case.priority_label, case.verified) == ("high", False)

    reviewer = Console(server.url)
    await reviewer.sign_in(rita)
    page = await reviewer.request("GET", f"/cases/{claim.case_id}")
    assert f"Mark {liar.username} as reporting in bad faith" in page.text
    mark_path = f"/cases/{claim.case_id}/reporters/{liar.username}/bad-faith"
    # Refused: no CSRF token; a reporter who did not report in this case; an oversized reason.
    assert (await reviewer.request("POST", mark_path, {"reason": "x"})).status_code == 403
    assert (
        await reviewer.post(f"/cases/{claim.case_id}/reporters/{sender.username}/bad-faith")
    ).status_code == 404
    assert (await reviewer.post(mark_path, reason="x" * 501)).status_code == 400
    marked = await reviewer.post(mark_path, reason="claims CSAM about everyone who blocks them")
    assert marked.status_code in (302, 303)
    page = await reviewer.request("GET", f"/cases/{claim.case_id}")
    assert "reporter marked: bad faith" in page.text
    # Reviewers mark; only a lead clears.
    clear_path = f"{mark_path}/clear"
    assert (await reviewer.post(clear_path)).status_code == 403
    await reviewer.http.aclose()

    # The liar's next bare claim ranks low; their verified evidence keeps its rank.
    later = await liar.report_account(second.username, ReportReason.CSAM, block=False)
    await sender.send_text(liar.username, "a genuinely threatening message")
    [event] = [e for e in await liar.fetch() if isinstance(e, MessageEvent)]
    evidence = await liar.report(event, ReportReason.SEXTORTION, context=0)
    assert evidence.verified == [True]
    async with server_context(server.data_dir, server.database_url) as ctx:
        assert (await _case_of(ctx, second.username)).priority_label == "low"
        verified_case = await _case_of(ctx, sender.username)
        assert verified_case.verified and verified_case.priority_label == "urgent"  # as from anyone
        assert (await _case_of(ctx, first.username)).priority_label == "high"  # earlier claims keep theirs
        async with ctx.sessions() as session:
            trail = await entries_for(session, f"case:{claim.case_id}")
            [mark] = [e for e in trail if e.action == "reporter.marked_bad_faith"]
            assert rita in mark.actor and liar.username in mark.details
            assert (await verify_chain(session)).ok

    lead = Console(server.url)
    await lead.sign_in(lena)
    assert (await lead.post(clear_path)).status_code in (302, 303)
    assert "reporter marked: bad faith" not in (await lead.request("GET", f"/cases/{claim.case_id}")).text
    await lead.http.aclose()
    third = await register(server.url, tmp_path, "third")
    cleared = await liar.report_account(third.username, ReportReason.CSAM, block=False)
    async with server_context(server.data_dir, server.database_url) as ctx:
        assert (await _case_of(ctx, third.username)).priority_label == "high"
        async with ctx.sessions() as session:
            trail = await entries_for(session, f"case:{claim.case_id}")
            assert any(e.action == "reporter.bad_faith_cleared" and lena in e.actor for e in trail)
    assert cleared.case_id != later.case_id

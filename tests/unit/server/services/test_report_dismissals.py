"""Bulk dismissal of duplicate reports about one item, on a migrated SQLite database: only reports about
the same message (or the same account) go together, each is audited, a policy is cited, the case goes on
with the reports left standing and closes as a counted decision when none is left."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from vigil.errors import ConflictError, ValidationError
from vigil.server.context import ServerContext
from vigil.server.db.accounts import AccountActionRow, UserRepository, UserRow
from vigil.server.db.audit import AuditRow
from vigil.server.db.cases import CaseRepository, CaseRow, ReportItemRow, ReportRow
from vigil.server.db.reviewers import ReviewerRow
from vigil.server.services import cases, policies
from vigil.server.services.report_dismissals import dismiss_duplicate_reports
from vigil.server.settings import Settings

T0 = 1_800_000_000_000


@pytest.fixture
async def ctx(tmp_path: Path) -> AsyncIterator[ServerContext]:
    async with ServerContext.open(Settings(data_dir=tmp_path), clock_ms=lambda: T0) as c:
        yield c


async def _case_with_reports(ctx: ServerContext, about: list[str | None]) -> tuple[int, list[int], int]:
    """One open case about mallory with a report per entry of `about`: a message id the report's primary
    item names, or None for an account report. Returns the case, its reports and a reviewer."""
    async with ctx.sessions() as session, session.begin():
        users = UserRepository(session)
        mallory = await users.add(UserRow(username="mallory", age_band="adult", created_at_ms=T0))
        case = await CaseRepository(session).add(
            CaseRow(
                subject_user_id=mallory.id,
                state="open",
                priority=20,
                top_reason="spam",
                verified=False,
                assignee_id=None,
                created_at_ms=T0,
                updated_at_ms=T0,
                queue="general",
            )
        )
        reviewer = ReviewerRow(
            username="dee",
            password_hash="x",
            role="reviewer",
            failed_logins=0,
            locked_until_ms=0,
            disabled=False,
            created_at_ms=T0,
        )
        session.add(reviewer)
        report_ids = []
        for n, message_id in enumerate(about):
            reporter = await users.add(UserRow(username=f"reporter{n}", age_band="adult", created_at_ms=T0))
            report = ReportRow(
                case_id=case.id,
                reporter_user_id=reporter.id,
                reported_user_id=mallory.id,
                reason="spam",
                reporter_age_band="adult",
                blocked=False,
                created_at_ms=T0,
                expires_at_ms=T0 + 1,
            )
            session.add(report)
            await session.flush()
            if message_id is not None:
                session.add(
                    ReportItemRow(
                        report_id=report.id,
                        position=0,
                        message_id=message_id,
                        sender="mallory",
                        conversation="group:1",
                        server_ts_ms=T0,
                        kind="text",
                        verified=True,
                        verdict="verified",
                        content_enc=b"sealed",
                    )
                )
            report_ids.append(report.id)
        await session.flush()
        return case.id, report_ids, reviewer.id


async def test_duplicates_about_one_message_are_dismissed_together_and_audited_each(
    ctx: ServerContext,
) -> None:
    case_id, reports, dee = await _case_with_reports(ctx, ["m-1", "m-1", "m-1", "m-2"])
    policy = await policies.add_policy(ctx, "test", "DUP-1", "Duplicate report")
    with pytest.raises(ValidationError, match="policy"):
        await dismiss_duplicate_reports(ctx, "reviewer:dee", dee, case_id, reports[:3], None)
    with pytest.raises(ValidationError, match="different items"):
        await dismiss_duplicate_reports(ctx, "reviewer:dee", dee, case_id, reports[2:], policy.id)
    with pytest.raises(ValidationError, match="not a report of this case"):
        await dismiss_duplicate_reports(ctx, "reviewer:dee", dee, case_id, [reports[0], 999], policy.id)

    outcome = await dismiss_duplicate_reports(ctx, "reviewer:dee", dee, case_id, reports[:3], policy.id)
    assert (outcome.dismissed, outcome.case_closed) == (3, False)
    summary = await cases.case_summary(ctx, case_id)
    assert summary.state == "open" and summary.decided_at_ms is None  # the m-2 report still stands
    detail = await cases.case_detail(ctx, "reviewer:dee", case_id, frozenset())
    assert [r.dismissed_at_ms for r in detail.reports] == [T0, T0, T0, None]
    async with ctx.sessions() as session:
        audit = (await session.scalars(select(AuditRow).where(AuditRow.action == "report.dismissed"))).all()
        assert sorted(json.loads(a.details)["report"] for a in audit) == reports[:3]
        assert {json.loads(a.details)["policy"] for a in audit} == {"DUP-1"}
    with pytest.raises(ValidationError, match="already dismissed"):
        await dismiss_duplicate_reports(ctx, "reviewer:dee", dee, case_id, reports[:1], policy.id)

    # Dismissing the last standing report closes the case as a decision by the reviewer.
    outcome = await dismiss_duplicate_reports(ctx, "reviewer:dee", dee, case_id, reports[3:], policy.id)
    assert outcome.case_closed
    summary = await cases.case_summary(ctx, case_id)
    assert summary.state == "dismissed" and summary.decision_policy_id == policy.id
    async with ctx.sessions() as session:
        decided = (await session.scalars(select(AccountActionRow.reviewer_id))).all()
        assert decided == [dee]  # one decision, counted for the reviewer on the metrics page
    with pytest.raises(ConflictError, match="closed"):
        await dismiss_duplicate_reports(ctx, "reviewer:dee", dee, case_id, reports[3:], policy.id)


async def test_account_reports_are_duplicates_of_each_other_not_of_a_message_report(
    ctx: ServerContext,
) -> None:
    case_id, reports, dee = await _case_with_reports(ctx, [None, None, "m-1"])
    policy = await policies.add_policy(ctx, "test", "DUP-1", "Duplicate report")
    with pytest.raises(ValidationError, match="different items"):
        await dismiss_duplicate_reports(ctx, "reviewer:dee", dee, case_id, reports, policy.id)
    outcome = await dismiss_duplicate_reports(ctx, "reviewer:dee", dee, case_id, reports[:2], policy.id)
    assert outcome.dismissed == 2 and not outcome.case_closed

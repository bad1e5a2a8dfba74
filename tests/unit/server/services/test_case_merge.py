"""Merging cases on a migrated database, SQLite and PostgreSQL: duplicate reports about one account's
message in two open cases end up in one case, decided once; the source closes; both sides are audited;
cases about different accounts, closed cases and appeals are refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from live_server import create_postgres_database, drop_postgres_database, require_backend
from sqlalchemy import func, select

from vigil.errors import ConflictError, ValidationError
from vigil.safety.routing import QueueName
from vigil.server.context import ServerContext
from vigil.server.db.accounts import UserRepository, UserRow
from vigil.server.db.audit import AuditRow
from vigil.server.db.cases import CaseRepository, CaseRow, ReportRow
from vigil.server.db.cybertip import CyberTipFilingRepository, CyberTipFilingRow
from vigil.server.services import cases
from vigil.server.settings import Settings

T0 = 1_800_000_000_000


@pytest.fixture(params=["sqlite", "postgres"])
async def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ServerContext]:
    require_backend(request.param)
    if request.param == "postgres":
        database, url = create_postgres_database()
        try:
            async with ServerContext.open(
                Settings(data_dir=tmp_path, database_url=url), clock_ms=lambda: T0
            ) as c:
                yield c
        finally:
            drop_postgres_database(database)
    else:
        async with ServerContext.open(Settings(data_dir=tmp_path), clock_ms=lambda: T0) as c:
            yield c


async def _setup(ctx: ServerContext) -> tuple[int, int, int]:
    """Two open cases about mallory (one report each about the same message) and one about bob."""
    async with ctx.sessions() as session, session.begin():
        users = UserRepository(session)
        reporter = await users.add(UserRow(username="reporter", age_band="adult", created_at_ms=T0))
        subjects = [
            await users.add(UserRow(username=name, age_band="adult", created_at_ms=T0))
            for name in ("mallory", "bob")
        ]
        ids = []
        for subject, queue, priority in (
            (subjects[0], "general", 20),
            (subjects[0], "minors", 60),
            (subjects[1], "general", 10),
        ):
            case = await CaseRepository(session).add(
                CaseRow(
                    subject_user_id=subject.id,
                    state="open",
                    priority=priority,
                    top_reason="harassment",
                    verified=False,
                    assignee_id=None,
                    created_at_ms=T0,
                    updated_at_ms=T0,
                    queue=queue,
                )
            )
            session.add(
                ReportRow(
                    case_id=case.id,
                    reporter_user_id=reporter.id,
                    reported_user_id=subject.id,
                    reason="harassment",
                    reporter_age_band="adult",
                    blocked=False,
                    created_at_ms=T0,
                    expires_at_ms=T0 + 1,
                )
            )
            ids.append(case.id)
        return ids[0], ids[1], ids[2]


async def test_merging_moves_the_reports_and_closes_the_source(ctx: ServerContext) -> None:
    first, second, other = await _setup(ctx)
    with pytest.raises(ValidationError, match="different accounts"):
        await cases.merge_case(ctx, "reviewer:lead", first, other)
    with pytest.raises(ValidationError, match="itself"):
        await cases.merge_case(ctx, "reviewer:lead", first, first)

    await cases.merge_case(ctx, "reviewer:lead", second, first)
    async with ctx.sessions() as session:
        source, target = await CaseRepository(session).get(second), await CaseRepository(session).get(first)
        assert source is not None and target is not None
        assert source.state == "dismissed" and target.state == "open"
        assert (target.queue, target.priority) == (QueueName.MINORS.value, 60)  # the more urgent side wins
        reports = await session.scalar(
            select(func.count()).select_from(ReportRow).where(ReportRow.case_id == first)
        )
        assert reports == 2
        audited = (
            await session.scalars(select(AuditRow.action).where(AuditRow.action.like("case.merged%")))
        ).all()
        assert sorted(audited) == ["case.merged_from", "case.merged_into"]
    with pytest.raises(ConflictError, match="open"):
        await cases.merge_case(ctx, "reviewer:lead", second, first)  # the source is closed now


async def test_two_concurrent_merges_of_one_pair_never_both_move_the_reports(ctx: ServerContext) -> None:
    first, second, _other = await _setup(ctx)
    outcomes = await asyncio.gather(
        cases.merge_case(ctx, "reviewer:ana", second, first),
        cases.merge_case(ctx, "reviewer:ben", first, second),
        return_exceptions=True,
    )
    refused = [o for o in outcomes if isinstance(o, ConflictError)]
    assert outcomes.count(None) == 1 and len(refused) == 1, outcomes
    async with ctx.sessions() as session:
        states = {
            c.id: c.state
            for c in await session.scalars(select(CaseRow).where(CaseRow.id.in_((first, second))))
        }
        assert sorted(states.values()) == ["dismissed", "open"]
        [kept] = [case_id for case_id, state in states.items() if state == "open"]
        placed = (
            await session.scalars(select(ReportRow.case_id).where(ReportRow.reported_user_id != 0))
        ).all()
        assert placed.count(kept) == 2  # both reports about mallory in the open case, none left behind
        merged = (
            await session.scalars(select(AuditRow.action).where(AuditRow.action.like("case.merged%")))
        ).all()
        assert sorted(merged) == ["case.merged_from", "case.merged_into"]  # one merge, audited once


async def test_a_case_being_filed_or_filed_to_ncmec_is_not_merged_away(ctx: ServerContext) -> None:
    first, second, _other = await _setup(ctx)
    async with ctx.sessions() as session, session.begin():  # a filer holds the source's lease
        assert await CyberTipFilingRepository(session).take_lease(second, "filer", T0, T0 + 60_000)
    with pytest.raises(ConflictError, match="being filed"):
        await cases.merge_case(ctx, "reviewer:lead", second, first)
    async with ctx.sessions() as session, session.begin():
        await CyberTipFilingRepository(session).release_lease(second, "filer")
        session.add(
            CyberTipFilingRow(
                case_id=second,
                subject_user_id=(await CaseRepository(session).get(second)).subject_user_id,  # type: ignore[union-attr]
                state="finished",
                incident_type="child_pornography",
                base_url="http://127.0.0.1:1",
                is_test=True,
                report_enc=b"",
                attempts=1,
                retries=0,
                recoveries=0,
                filed_by="reviewer:lead",
                created_at_ms=T0,
                updated_at_ms=T0,
            )
        )
    with pytest.raises(ConflictError, match="filed to NCMEC"):
        await cases.merge_case(ctx, "reviewer:lead", second, first)
    async with ctx.sessions() as session:
        assert (await CaseRepository(session).get(second)).state == "open"  # type: ignore[union-attr]
        assert await CyberTipFilingRepository(session).lease(second) is None  # the merge left no lease
    await cases.merge_case(ctx, "reviewer:lead", first, second)  # the other way round is allowed

"""Queues and claims on a migrated database, SQLite and PostgreSQL: routing lands cases in queues, "claim
next" is atomic under concurrency (no case handed out twice), a lapsed claim is claimable again, release
and hold, and every step is in the audit log."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from live_server import create_postgres_database, drop_postgres_database, require_backend
from sqlalchemy import select

from vigil.errors import PermissionDenied
from vigil.protocol.reports import ReportReason
from vigil.safety.routing import QueueName
from vigil.server.context import ServerContext
from vigil.server.db.accounts import UserRepository, UserRow
from vigil.server.db.audit import AuditRow
from vigil.server.db.cases import QueueFilter
from vigil.server.db.reviewers import ReviewerRow
from vigil.server.services import cases
from vigil.server.services.cases import open_or_join_case
from vigil.server.settings import Settings

T0 = 1_800_000_000_000
CLAIM_MINUTES = 7  # VIGIL_CLAIM_MINUTES for these tests (the default is 30)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


@pytest.fixture(params=["sqlite", "postgres"])
async def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ServerContext]:
    require_backend(request.param)
    if request.param == "postgres":
        database, url = create_postgres_database()
        try:
            async with ServerContext.open(
                Settings(data_dir=tmp_path, database_url=url, claim_minutes=CLAIM_MINUTES), clock_ms=Clock()
            ) as c:
                yield c
        finally:
            drop_postgres_database(database)
    else:
        async with ServerContext.open(
            Settings(data_dir=tmp_path, claim_minutes=CLAIM_MINUTES), clock_ms=Clock()
        ) as c:
            yield c


async def _reviewer(ctx: ServerContext, name: str) -> int:
    async with ctx.sessions() as session, session.begin():
        row = ReviewerRow(
            username=name,
            password_hash="x",
            role="reviewer",
            failed_logins=0,
            locked_until_ms=0,
            disabled=False,
            created_at_ms=T0,
        )
        session.add(row)
        await session.flush()
        return row.id


async def _cases(ctx: ServerContext, count: int, queue: QueueName) -> list[int]:
    ids = []
    async with ctx.sessions() as session, session.begin():
        for n in range(count):
            user = await UserRepository(session).add(
                UserRow(username=f"{queue.value[:6]}{n}", age_band="adult", created_at_ms=T0)
            )
            case = await open_or_join_case(
                session, user, ReportReason.SPAM, 10 + n, False, T0 + n, queue=queue
            )
            ids.append(case.id)
    return ids


async def test_concurrent_claims_never_hand_out_a_case_twice(ctx: ServerContext) -> None:
    ids = await _cases(ctx, 12, QueueName.MINORS)
    await _cases(ctx, 3, QueueName.GENERAL)
    ana, ben = await _reviewer(ctx, "ana"), await _reviewer(ctx, "ben")
    claims = [
        cases.claim_next(ctx, f"reviewer:{name}", rid, QueueName.MINORS)
        for _ in range(8)
        for name, rid in (("ana", ana), ("ben", ben))
    ]
    got = await asyncio.gather(*claims)
    won = [g for g in got if g is not None]
    assert len(won) == 12 and len(set(won)) == 12 and set(won) == set(ids)
    assert got.count(None) == 4
    # Most urgent first: the first claim in a fresh queue takes the highest priority.
    async with ctx.sessions() as session:
        audit = list(await session.scalars(select(AuditRow).where(AuditRow.action == "case.claimed")))
    assert len(audit) == 12


async def test_claims_lapse_and_release_and_hold(ctx: ServerContext) -> None:
    ids = await _cases(ctx, 2, QueueName.GENERAL)
    ana, ben = await _reviewer(ctx, "ana"), await _reviewer(ctx, "ben")
    first = await cases.claim_next(ctx, "reviewer:ana", ana, QueueName.GENERAL)
    assert first == ids[1]  # priority 11 beats 10
    summary = await cases.case_summary(ctx, ids[1])
    assert summary.claimed_by(T0) == ana and summary.state == "in_review"
    assert summary.claim_expires_at_ms == T0 + CLAIM_MINUTES * 60_000  # the setting, not a constant
    with pytest.raises(PermissionDenied):
        await cases.release(ctx, "reviewer:ben", ben, ids[1], lead=False)
    # Ana's claim lapses; Ben's next claim takes the lapsed case (it is the most urgent).
    clock = ctx.clock_ms
    assert isinstance(clock, Clock)
    clock.now = T0 + CLAIM_MINUTES * 60_000 + 1
    assert (await cases.case_summary(ctx, ids[1])).claimed_by(clock.now) is None
    assert await cases.claim_next(ctx, "reviewer:ben", ben, QueueName.GENERAL) == ids[1]
    await cases.release(ctx, "reviewer:ben", ben, ids[1], lead=False)
    assert (await cases.case_summary(ctx, ids[1])).claimed_by(clock.now) is None
    await cases.hold(ctx, "reviewer:ben", ids[1])
    # A held case is out of "claim next": the next claim takes the other case, then nothing.
    assert await cases.claim_next(ctx, "reviewer:ana", ana, QueueName.GENERAL) == ids[0]
    assert await cases.claim_next(ctx, "reviewer:ana", ana, QueueName.GENERAL) is None
    held = await cases.queue(ctx, QueueFilter(states=("on_hold",), queues=(QueueName.GENERAL.value,)))
    assert [c.id for c in held] == [ids[1]]
    async with ctx.sessions() as session:
        actions = list(await session.scalars(select(AuditRow.action).order_by(AuditRow.id)))
    assert actions.count("case.released") == 1 and actions.count("case.held") == 1


async def test_a_joining_report_moves_the_case_only_to_a_more_urgent_queue(ctx: ServerContext) -> None:
    async with ctx.sessions() as session, session.begin():
        user = await UserRepository(session).add(UserRow(username="mal", age_band="adult", created_at_ms=T0))
        case = await open_or_join_case(
            session, user, ReportReason.SPAM, 10, False, T0, queue=QueueName.GENERAL
        )
        await open_or_join_case(
            session, user, ReportReason.CSAM, 90, False, T0, queue=QueueName.IMAGE_MATCHES
        )
        await open_or_join_case(session, user, ReportReason.SPAM, 10, False, T0, queue=QueueName.RISK_LEADS)
        assert case.queue == QueueName.IMAGE_MATCHES.value


async def test_strikes_under_one_policy_escalate_the_decision(ctx: ServerContext) -> None:
    from vigil.server.db.accounts import AccountActionRow
    from vigil.server.services import policies
    from vigil.server.services.cases import CaseAction, apply_action

    ana = await _reviewer(ctx, "ana")
    har = await policies.add_policy(ctx, "test", "HAR-1", "Harassment")
    spam = await policies.add_policy(ctx, "test", "SPAM-1", "Spam")
    async with ctx.sessions() as session, session.begin():
        user = await UserRepository(session).add(UserRow(username="mal", age_band="adult", created_at_ms=T0))
    applied = []
    for policy in (har, spam, har, har, har, har):
        async with ctx.sessions() as session, session.begin():
            case = await open_or_join_case(session, user, ReportReason.HARASSMENT, 10, False, T0)
            case_id = case.id
        await apply_action(ctx, "reviewer:ana", ana, case_id, CaseAction.WARN, policy_id=policy.id)
        applied.append(await _last_action(ctx, AccountActionRow))
    # Defaults restrict=3,suspend=5, counted per policy: the spam strike does not add to harassment.
    assert applied == ["warn", "warn", "warn", "restrict", "restrict", "suspend"]


async def _last_action(ctx: ServerContext, row: type) -> str:
    async with ctx.sessions() as session:
        return str(await session.scalar(select(row.action).order_by(row.id.desc()).limit(1)))


async def test_a_decision_without_a_reviewer_still_cites_a_policy_and_counts_a_strike(
    ctx: ServerContext,
) -> None:
    """Regression: the policy rule was skipped when `reviewer_id` was None (a script or system actor), so
    such decisions cited nothing and their strikes never counted towards escalation."""
    from vigil.errors import ValidationError
    from vigil.server.db.accounts import AccountActionRow
    from vigil.server.services import policies
    from vigil.server.services.cases import CaseAction, apply_action

    [case_id] = await _cases(ctx, 1, QueueName.GENERAL)
    with pytest.raises(ValidationError, match="policy"):
        await apply_action(ctx, "system:script", None, case_id, CaseAction.WARN)
    assert (await cases.case_summary(ctx, case_id)).decided_at_ms is None  # nothing was applied
    har = await policies.add_policy(ctx, "test", "HAR-2", "Harassment")
    for _ in range(3):
        await apply_action(ctx, "system:script", None, case_id, CaseAction.WARN, policy_id=har.id)
    assert await _last_action(ctx, AccountActionRow) == "restrict"  # the 3rd strike escalates
    # Lifting is no decision and needs no policy.
    await apply_action(ctx, "system:script", None, case_id, CaseAction.LIFT)

"""The account lookup on a migrated SQLite database: risk scores with reasons over time (a history that
grows only when the assessment changes, swept after its retention), and related accounts through the
contact graph and shared groups, audited, never content."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from vigil.protocol.ids import UserId
from vigil.safety.behavior.assessment import Reason, RiskAssessment
from vigil.safety.behavior.policy import Decision, ProtectiveAction
from vigil.server.context import ServerContext
from vigil.server.db.accounts import UserRepository, UserRow
from vigil.server.db.audit import AuditRow
from vigil.server.db.contacts import ConnectionRow
from vigil.server.db.metadata import RiskHistoryRow
from vigil.server.services import investigation
from vigil.server.services.risk_history import RESTATE_MS, record_assessments, sweep_risk_history
from vigil.server.settings import Settings

T0 = 1_800_000_000_000
DAY = 86_400_000


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


@pytest.fixture
async def ctx(tmp_path: Path) -> AsyncIterator[ServerContext]:
    settings = Settings(data_dir=tmp_path, risk_history_retention_days=30)
    async with ServerContext.open(settings, clock_ms=Clock()) as c:
        yield c


def _decision(score: float, level: ProtectiveAction, *reasons: str) -> Decision:
    assessment = RiskAssessment(
        user=UserId("p-mallory"),
        at_ms=T0,
        score=score,
        reasons=tuple(
            Reason(feature=f"f{n}", value=1.0, contribution=1.0, text=t) for n, t in enumerate(reasons)
        ),
        model_version="risk-v2",
    )
    return Decision(
        user=UserId("p-mallory"), level=level, actions=frozenset({level}), notify=(), assessment=assessment
    )


async def _record(ctx: ServerContext, user: UserRow, decision: Decision, at_ms: int) -> int:
    async with ctx.sessions() as session, session.begin():
        return await record_assessments(session, [decision], {"p-mallory": user.id}, at_ms)


async def test_risk_scores_with_reasons_over_time_and_related_accounts(ctx: ServerContext) -> None:
    async with ctx.sessions() as session, session.begin():
        users = UserRepository(session)
        mallory = await users.add(UserRow(username="mallory", age_band="adult", created_at_ms=T0))
        teen = await users.add(UserRow(username="teen", age_band="13_15", created_at_ms=T0))
        pal = await users.add(UserRow(username="pal", age_band="adult", created_at_ms=T0))
        stranger = await users.add(UserRow(username="stranger", age_band="adult", created_at_ms=T0))
        for a, b, at in ((mallory, pal, T0 + 1), (teen, mallory, T0 + 2), (pal, stranger, T0 + 3)):
            low, high = sorted((a.id, b.id))
            session.add(ConnectionRow(low_user_id=low, high_user_id=high, created_at_ms=at))

    notice = ProtectiveAction.SAFETY_NOTICE
    first = _decision(0.61, notice, "contacted 4 minors this week")
    assert await _record(ctx, mallory, first, T0) == 1
    assert await _record(ctx, mallory, first, T0 + 1000) == 0  # nothing changed: no new row
    assert (
        await _record(ctx, mallory, _decision(0.63, notice, "contacted 4 minors this week"), T0 + 2000) == 0
    )
    higher = _decision(0.82, ProtectiveAction.OPEN_CASE, "contacted 9 minors this week", "new account")
    assert await _record(ctx, mallory, higher, T0 + DAY) == 1
    assert await _record(ctx, mallory, higher, T0 + DAY + RESTATE_MS) == 1  # restated after a day

    found = await investigation.look_up(ctx, "reviewer:ivy", "mallory")
    assert [(p.at_ms, p.score, p.level) for p in found.risk] == [
        (T0, 0.61, "safety_notice"),
        (T0 + DAY, 0.82, "open_case"),
        (T0 + DAY + RESTATE_MS, 0.82, "open_case"),
    ]
    assert found.risk[1].reasons == ("contacted 9 minors this week", "new account")
    # Contact-graph neighbours: accepted contacts only, in the order they connected; pal's contact
    # 'stranger' is no neighbour of mallory.
    assert found.contacts == [("pal", "adult", T0 + 1), ("teen", "13_15", T0 + 2)]
    assert [
        name
        for name, _band, _since in (await investigation.look_up(ctx, "reviewer:ivy", "stranger")).contacts
    ] == ["pal"]
    async with ctx.sessions() as session:
        looked = (
            await session.scalars(select(AuditRow.target).where(AuditRow.action == "account.looked_up"))
        ).all()
        assert looked == ["user:mallory", "user:stranger"]

    # Retention: rows older than VIGIL_RISK_HISTORY_RETENTION_DAYS (30 here) go.
    assert await sweep_risk_history(ctx, T0 + 30 * DAY + 1) == 1
    async with ctx.sessions() as session:
        left = (await session.scalars(select(RiskHistoryRow.at_ms).order_by(RiskHistoryRow.id))).all()
        assert left == [T0 + DAY, T0 + DAY + RESTATE_MS]

"""What a scoring pass writes when it moves many accounts up the ladder at once (the writes are batched
across accounts): every notice signed for its recipient, every restriction and case, one audit entry per
action in an intact chain, the risk states, and the risk history, which a later pass does not repeat
when nothing changed (from the state's copy of the newest rows or from the table alike)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from live_server import create_postgres_database, drop_postgres_database, require_backend
from sqlalchemy import func, insert, select

from vigil.protocol.contacts import SignedNotice
from vigil.protocol.encoding import b64encode
from vigil.protocol.notices import notice_public_key, verify_notice
from vigil.safety.behavior.events import MetadataEvent
from vigil.safety.behavior.policy import ProtectiveAction
from vigil.server.context import ServerContext
from vigil.server.db.accounts import AccountActionRow, AccountStandingRow, UserRow
from vigil.server.db.audit import AuditRow
from vigil.server.db.metadata import RiskHistoryRow, RiskStateRow
from vigil.server.db.notices import SafetyNoticeRow
from vigil.server.services import metadata
from vigil.server.services.audit import verify_chain
from vigil.server.services.risk import run_risk_scoring
from vigil.server.settings import Settings
from vigil.sim.generator import EventGenerator
from vigil.sim.population import build_population
from vigil.sim.scenario import default_scenario

DAY_MS = 86_400_000


class _Collect:
    def __init__(self) -> None:
        self.events: list[MetadataEvent] = []

    def emit(self, event: MetadataEvent) -> None:
        self.events.append(event)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_pass_acting_on_many_accounts_writes_audits_and_notifies_each(
    backend: str, tmp_path: Path
) -> None:
    require_backend(backend)
    database, url = None, f"sqlite+aiosqlite:///{tmp_path / 'risk.db'}"
    if backend == "postgres":
        database, url = create_postgres_database()
    scenario = default_scenario().with_overrides(
        days=3, history_days=3, population={"minors": 60, "adults": 80}
    )
    rng = np.random.default_rng(7)
    sink = _Collect()
    generator = EventGenerator(scenario, build_population(scenario, rng), rng, sink)
    facts = generator.account_facts()
    generator.emit_history()
    for day in range(scenario.days):
        generator.run_day(day)
    end = scenario.start_ms + 3 * DAY_MS
    try:
        async with ServerContext.open(Settings(data_dir=tmp_path / "server", database_url=url)) as ctx:
            async with ctx.sessions() as session, session.begin():
                await session.execute(
                    insert(UserRow),
                    [
                        {"username": f.user, "age_band": f.age_band.value, "created_at_ms": f.created_at_ms}
                        for f in facts
                    ],
                )
                await metadata.record_many(ctx, session, sorted(sink.events, key=lambda e: e.at_ms))

            run = await run_risk_scoring(ctx, now_ms=end)
            applied = {a.user: a for a in run.applied}
            assert len(applied) >= 2 and any(a.notified for a in run.applied)
            assert any(a.case_id is not None for a in run.applied)

            async with ctx.sessions() as session:
                users = {
                    name: user_id
                    for name, user_id in await session.execute(select(UserRow.username, UserRow.id))
                }
                names = {user_id: name for name, user_id in users.items()}
                states = {
                    names[r.user_id]: (r.level, r.case_id)
                    for r in await session.scalars(select(RiskStateRow))
                }
                assert states == {user: (a.level.value, a.case_id) for user, a in applied.items()}

                # One signed notice per minor notified, about the account, verifiable by that minor.
                key = notice_public_key(ctx.notice_key)
                sent = sorted((user, minor) for user, a in applied.items() for minor in a.notified)
                rows = list(await session.scalars(select(SafetyNoticeRow).order_by(SafetyNoticeRow.id)))
                assert sorted((names[r.subject_user_id], names[r.user_id]) for r in rows) == sent
                for row in rows:
                    notice = SignedNotice(payload=b64encode(row.payload), signature=b64encode(row.signature))
                    body = verify_notice(key, notice, recipient=names[row.user_id])
                    assert (body.id, body.subject, body.kind) == (
                        row.id,
                        names[row.subject_user_id],
                        "elevated_risk",
                    )

                restricted = {
                    user
                    for user, a in applied.items()
                    if a.level.severity >= ProtectiveAction.RESTRICT_MINOR_CONTACT.severity
                }
                standings = {
                    names[r.user_id]: r.standing for r in await session.scalars(select(AccountStandingRow))
                }
                assert standings == dict.fromkeys(restricted, "restricted")
                actions = [
                    (names[r.user_id], r.action) for r in await session.scalars(select(AccountActionRow))
                ]
                assert sorted(actions) == sorted((user, "auto_restrict") for user in restricted)

                # One audit entry per account moved up, one per case opened, in an intact chain.
                audit = list(await session.scalars(select(AuditRow).order_by(AuditRow.id)))
                moved = sorted(f"user:{users[user]}" for user in applied)
                assert sorted(r.target for r in audit if r.action.startswith("risk.")) == moved
                opened = sorted(f"case:{a.case_id}" for a in applied.values() if a.case_id is not None)
                assert sorted(r.target for r in audit if r.action == "case.risk_opened") == opened
                assert (await verify_chain(session)).ok

                history = await session.scalar(select(func.count(RiskHistoryRow.id)))
                assert history == len(run.decisions)

            # A second pass a second later decides the same: nothing to act on, no history to repeat,
            # whether it compares with the state's copy of the newest rows or (a fresh state) the table.
            again = await run_risk_scoring(ctx, now_ms=end + 1000)
            ctx.risk_state = None
            fresh = await run_risk_scoring(ctx, now_ms=end + 2000)
            assert again.applied == [] and fresh.applied == []
            assert len(again.decisions) == len(fresh.decisions) == len(run.decisions)
            async with ctx.sessions() as session:
                assert await session.scalar(select(func.count(RiskHistoryRow.id))) == history
                assert await session.scalar(select(func.count(AuditRow.id))) == len(audit)
    finally:
        if database is not None:
            drop_postgres_database(database)

"""Incremental risk scoring: a pass reads only what was logged since the previous one, and decides
exactly what a full pass over the window decides."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import insert

from vigil.protocol.wire import AgeBand, MessageKind
from vigil.safety.behavior.events import AccountFacts, MessageSent, MetadataEvent, UserId
from vigil.server.context import ServerContext
from vigil.server.db.accounts import UserRepository, UserRow
from vigil.server.db.metadata import MetadataRepository
from vigil.server.services import deletion, metadata, risk
from vigil.server.services.risk import RiskRun, RiskScoringState, run_risk_scoring
from vigil.server.settings import Settings
from vigil.sim.generator import EventGenerator
from vigil.sim.population import build_population
from vigil.sim.scenario import default_scenario

DAY_MS = 86_400_000


async def _id_of(ctx: ServerContext, username: str) -> int:
    async with ctx.sessions() as session:
        user = await UserRepository(session).by_username(username)
    assert user is not None
    return user.id


class _Collect:
    def __init__(self) -> None:
        self.events: list[MetadataEvent] = []

    def emit(self, event: MetadataEvent) -> None:
        self.events.append(event)


def _decided(run: RiskRun) -> list[tuple[str, str, float]]:
    return sorted((d.user, d.level.value, round(d.assessment.score, 9)) for d in run.decisions)


def _population(days: int) -> tuple[int, list[AccountFacts], list[MetadataEvent]]:
    scenario = default_scenario().with_overrides(
        days=days, history_days=days, population={"minors": 60, "adults": 80}
    )
    rng = np.random.default_rng(7)
    sink = _Collect()
    generator = EventGenerator(scenario, build_population(scenario, rng), rng, sink)
    facts = generator.account_facts()
    generator.emit_history()
    for day in range(scenario.days):
        generator.run_day(day)
    return scenario.start_ms, list(facts), sorted(sink.events, key=lambda e: e.at_ms)


async def _add_accounts(ctx: ServerContext, facts: list[AccountFacts]) -> None:
    async with ctx.sessions() as session, session.begin():
        await session.execute(
            insert(UserRow),
            [
                {"username": f.user, "age_band": f.age_band.value, "created_at_ms": f.created_at_ms}
                for f in facts
            ],
        )


async def _log(ctx: ServerContext, events: list[MetadataEvent]) -> None:
    async with ctx.sessions() as session, session.begin():
        await metadata.record_many(ctx, session, events)


async def test_a_pass_reads_only_new_events_and_decides_as_a_full_pass(tmp_path: Path) -> None:
    start, facts, events = _population(6)
    # The later passes fall within one day: the window moves at the next (and a pass rebuilds from it).
    middle, end = start + 5 * DAY_MS + 3_600_000, start + 6 * DAY_MS - 10
    first = [e for e in events if e.at_ms < middle]
    later = [e for e in events if e.at_ms >= middle]
    assert first and later
    # The rest arrives in slices, one pass each, and an account created after the first pass (its facts
    # are read again) reaches minors of the population in the last slice.
    slice_ms = (end - middle) // 3 + 1
    slices = [
        [e for e in later if middle + i * slice_ms <= e.at_ms < middle + (i + 1) * slice_ms] for i in range(3)
    ]
    newcomer = AccountFacts(UserId("newcomer"), AgeBand.ADULT, middle + slice_ms)
    minors = [f.user for f in facts if f.age_band.is_minor][:12]
    at = middle + 2 * slice_ms + 1000
    approach: list[MetadataEvent] = [
        MessageSent(
            at + i * 60_000, newcomer.user, minor, None, 1, MessageKind.IMAGE if i % 2 else MessageKind.TEXT
        )
        for i, minor in enumerate(minors * 3)
    ]
    slices[2] = sorted(slices[2] + approach, key=lambda e: e.at_ms)

    async with ServerContext.open(Settings(data_dir=tmp_path)) as ctx:
        await _add_accounts(ctx, facts)
        await _log(ctx, first)
        before = await run_risk_scoring(ctx, now_ms=middle)
        assert before.events == len(first)

        applied = [(a.user, a.level) for a in before.applied]
        for i, new in enumerate(slices):
            if i == 1:
                await _add_accounts(ctx, [newcomer])
            await _log(ctx, new)
            incremental = await run_risk_scoring(ctx, now_ms=middle + (i + 1) * slice_ms)
            assert incremental.events == len(new)  # nothing read twice
            applied += [(a.user, a.level) for a in incremental.applied]
        # Each account moves up each rung once: a later pass finds it at its level.
        assert applied and len(applied) == len(set(applied))
        assert any(user == "newcomer" for user, _ in applied)  # registered by a later pass, and acted on
        nothing_new = await run_risk_scoring(ctx, now_ms=middle + 3 * slice_ms)
        assert nothing_new.events == 0 and nothing_new.applied == []
        assert _decided(nothing_new) == _decided(incremental)

        ctx.risk_state = None  # a fresh process: reads the whole window
        full = await run_risk_scoring(ctx, now_ms=middle + 3 * slice_ms)
        assert full.events == len(events) + len(approach)
        assert _decided(incremental) == _decided(full)
        assert incremental.scored == full.scored
        assert incremental.decisions  # the scenario has accounts worth deciding on
        assert full.applied == []  # the incremental passes applied everything a full pass decides
        newcomer_name = metadata.pseudonym_of(ctx, await _id_of(ctx, "newcomer"))
        assert newcomer_name in incremental.extractor.accounts()


async def test_the_pass_after_an_account_deletion_forgets_what_came_from_its_events(tmp_path: Path) -> None:
    start, facts, events = _population(3)
    end = start + 3 * DAY_MS
    async with ServerContext.open(Settings(data_dir=tmp_path)) as ctx:
        await _add_accounts(ctx, facts)
        await _log(ctx, events)
        first = await run_risk_scoring(ctx, now_ms=end)
        assert isinstance(ctx.risk_state, RiskScoringState)
        # A minor a flagged adult reached deletes their account: no case or hold keeps it.
        gone = first.decisions[0].notify[0]
        gone_id = next(user_id for user_id, name in ctx.risk_state.name_of.items() if name == gone)
        async with ctx.sessions() as session, session.begin():
            user = await UserRepository(session).by_id(gone_id)
            assert user is not None
            user.deletion_pending_since_ms = end
        assert await deletion.finish_pending_deletions(ctx, end) == 1
        async with ctx.sessions() as session:
            left = len(await MetadataRepository(session).columns_between(0, end + 1))
        assert 0 < left < len(events)

        after = await run_risk_scoring(ctx, now_ms=end + 1000)
        assert after.events == left  # read from the window again, without the deleted account's events
        ctx.risk_state = None
        fresh = await run_risk_scoring(ctx, now_ms=end + 1000)
        assert _decided(after) == _decided(fresh)
        assert all(gone not in d.notify for d in after.decisions)


def _features(run: RiskRun, users: list[UserId]) -> list[list[float]]:
    matrix = run.extractor.feature_matrix(users, run.now_ms)
    return [[round(float(v), 9) for v in row] for row in matrix]


async def _full_pass(ctx: ServerContext, now_ms: int) -> RiskRun:
    ctx.risk_state = None  # a fresh process: reads the whole window
    return await run_risk_scoring(ctx, now_ms=now_ms)


async def test_passes_over_longer_than_the_window_keep_the_state_a_full_pass_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 3-day window over 7 days of events, a pass every 6 hours: events leave the window on the way.
    monkeypatch.setattr(risk, "WINDOW_DAYS", 3)
    start, facts, events = _population(7)
    day0 = start // DAY_MS * DAY_MS
    async with ServerContext.open(Settings(data_dir=tmp_path)) as ctx:
        await _add_accounts(ctx, facts)
        logged = 0
        incremental: RiskRun | None = None
        for step in range(1, 4 * 7 + 1):
            now = day0 + step * 6 * 3_600_000 - 1
            new = [e for e in events if logged <= e.at_ms <= now]
            logged = now + 1
            await _log(ctx, new)
            incremental = await run_risk_scoring(ctx, now_ms=now)
            state = ctx.risk_state
            assert isinstance(state, RiskScoringState)
            assert state.window_start_ms == risk.window_start_ms(now)
        assert incremental is not None and incremental.events > 0
        # The last pass read only what was logged since the one before (the same day: no rebuild).
        assert incremental.events == len([e for e in events if logged - 6 * 3_600_000 <= e.at_ms < logged])
        window_start = risk.window_start_ms(incremental.now_ms)
        assert window_start > start + 3 * DAY_MS  # days of events have left the window
        full = await _full_pass(ctx, incremental.now_ms)
        assert full.events == len([e for e in events if window_start <= e.at_ms < logged])
        assert full.events < len([e for e in events if e.at_ms < logged])
        assert incremental.decisions and _decided(incremental) == _decided(full)
        assert incremental.scored == full.scored
        # Nothing older than the window is held: the same accounts, links and features as the full pass.
        users = sorted(incremental.extractor.accounts())
        assert users == sorted(full.extractor.accounts())
        assert _features(incremental, users) == _features(full, users)
        assert all(
            incremental.extractor.minors_contacted(u, full.now_ms)
            == full.extractor.minors_contacted(u, full.now_ms)
            for u in users
        )


async def test_the_pass_after_an_age_band_change_counts_the_history_under_the_new_band(
    tmp_path: Path,
) -> None:
    start, facts, events = _population(3)
    end = start + 3 * DAY_MS
    async with ServerContext.open(Settings(data_dir=tmp_path)) as ctx:
        await _add_accounts(ctx, facts)
        await _log(ctx, events)
        first = await run_risk_scoring(ctx, now_ms=end)
        assert isinstance(ctx.risk_state, RiskScoringState)
        # A minor a flagged adult reached turns 18 (the daily band update): what the adult sent them
        # was to a minor under the old band, and is to an adult under the new one.
        decision = first.decisions[0]
        grown = decision.notify[0]
        grown_id = next(user_id for user_id, name in ctx.risk_state.name_of.items() if name == grown)
        async with ctx.sessions() as session, session.begin():
            user = await UserRepository(session).by_id(grown_id)
            assert user is not None
            user.age_band, user.band_changes_on = AgeBand.ADULT.value, None

        after = await run_risk_scoring(ctx, now_ms=end + 1000)
        assert after.events == len(events)  # read from the window again
        assert not after.extractor.is_minor(grown)
        fresh = await _full_pass(ctx, end + 1000)
        assert _decided(after) == _decided(fresh)
        users = sorted(after.extractor.accounts())
        assert _features(after, users) == _features(fresh, users)
        assert grown not in after.extractor.minors_contacted(decision.user, end + 1000)
        before = first.extractor.features(decision.user, end)["distinct_minors_contacted"]
        assert after.extractor.features(decision.user, end + 1000)["distinct_minors_contacted"] == before - 1

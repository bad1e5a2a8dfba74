"""Incremental risk scoring: a pass reads only what was logged since the previous one, and decides
exactly what a full pass over the window decides."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy import insert

from vigil.safety.behavior.events import MetadataEvent
from vigil.server.context import ServerContext
from vigil.server.db.accounts import UserRow
from vigil.server.services import metadata
from vigil.server.services.risk import RiskRun, run_risk_scoring
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


def _decided(run: RiskRun) -> list[tuple[str, str, float]]:
    return sorted((d.user, d.level.value, round(d.assessment.score, 9)) for d in run.decisions)


async def test_a_pass_reads_only_new_events_and_decides_as_a_full_pass(tmp_path: Path) -> None:
    scenario = default_scenario().with_overrides(
        days=6, history_days=6, population={"minors": 60, "adults": 80}
    )
    rng = np.random.default_rng(7)
    sink = _Collect()
    generator = EventGenerator(scenario, build_population(scenario, rng), rng, sink)
    facts = generator.account_facts()
    generator.emit_history()
    for day in range(scenario.days):
        generator.run_day(day)
    events = sorted(sink.events, key=lambda e: e.at_ms)
    middle = scenario.start_ms + 3 * DAY_MS
    end = scenario.start_ms + scenario.days * DAY_MS
    first, second = [e for e in events if e.at_ms < middle], [e for e in events if e.at_ms >= middle]
    assert first and second

    async with ServerContext.open(Settings(data_dir=tmp_path)) as ctx:
        async with ctx.sessions() as session, session.begin():
            await session.execute(
                insert(UserRow),
                [
                    {
                        "username": f.user,
                        "age_band": f.age_band.value,
                        "adult_on": "2000-01-01",
                        "created_at_ms": f.created_at_ms,
                    }
                    for f in facts
                ],
            )
            await metadata.record_many(ctx, session, first)
        before = await run_risk_scoring(ctx, now_ms=middle)
        assert before.events == len(first)

        async with ctx.sessions() as session, session.begin():
            await metadata.record_many(ctx, session, second)
        incremental = await run_risk_scoring(ctx, now_ms=end)
        assert incremental.events == len(second)  # nothing read twice
        nothing_new = await run_risk_scoring(ctx, now_ms=end)
        assert nothing_new.events == 0

        ctx.risk_state = None  # a fresh process: reads the whole window
        full = await run_risk_scoring(ctx, now_ms=end)
        assert full.events == len(events)
        assert _decided(incremental) == _decided(full)
        assert incremental.scored == full.scored
        assert incremental.decisions  # the scenario has accounts worth deciding on

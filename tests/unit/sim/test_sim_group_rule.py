"""Fast mode applies the server's minors' group rule (`vigil.safety.policy.decide_group_join`) to joins by
link, as server mode's real server does (tests/integration/test_sim_server_mode.py, the same scenario):
a minor is in a group only with adults they are connected to."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vigil.safety.behavior.events import (
    ContactRequestAnswered,
    GroupCreated,
    GroupJoined,
    MessageSent,
    MetadataEvent,
    RequestOutcome,
)
from vigil.safety.policy import unconnected_minor_adult
from vigil.sim.generator import EventGenerator
from vigil.sim.population import Role, build_population
from vigil.sim.run import run_scenario
from vigil.sim.scenario import Scenario, tiny_scenario


def _group_first() -> Scenario:
    """Server mode's group-first test scenario (test_sim_server_mode.py), run in fast mode."""
    return tiny_scenario().with_overrides(
        name="tiny-group-first",
        days=1,
        history_days=5,
        coaches={"team_size": [4, 8]},
        population={"minors": 12, "adults": 10, "school_size": 12, "class_size": 6, "groomers": 2},
        groomers={"group_first_share": 1.0, "patient_share": 0.0},
    )


class _Collect:
    def __init__(self) -> None:
        self.events: list[MetadataEvent] = []

    def emit(self, event: MetadataEvent) -> None:
        self.events.append(event)


def test_minor_joining_a_group_with_an_unconnected_adult_is_refused_in_fast_mode() -> None:
    sc = _group_first()
    rng = np.random.default_rng(sc.seed)
    pop = build_population(sc, rng)
    sink = _Collect()
    gen = EventGenerator(sc, pop, rng, sink)
    gen.emit_history()
    for day in range(sc.days):
        gen.run_day(day)

    minor_ids = {pop.ids[i] for i, r in enumerate(pop.roles) if r is Role.MINOR}
    # The population puts minors in interest groups with adults they do not know; those joins are refused.
    refused_minors = {m for gid, out in gen.outside.items() if gid.startswith("g-interest-") for m in out}
    assert gen.refused.get("group_joined:policy_violation", 0) == sum(map(len, gen.outside.values())) > 0
    assert any(gen.is_minor[m] for m in refused_minors), refused_minors
    # Their share of the group's messages is drawn (as server mode draws it) but never sent.
    assert gen.skipped.get("msg:not_in_group", 0) > 0, gen.skipped
    outside_ids = {(gid, pop.ids[m]) for gid, out in gen.outside.items() for m in out}
    assert not [e for e in sink.events if isinstance(e, MessageSent) and (e.group, e.sender) in outside_ids]

    # What was emitted obeys the rule: in every link-joined group, each minor is connected to each adult.
    connections = {
        frozenset((e.requester, e.recipient))
        for e in sink.events
        if isinstance(e, ContactRequestAnswered) and e.outcome is RequestOutcome.ACCEPTED
    }
    members: dict[str, set[str]] = {}
    linked: set[str] = set()
    for e in sink.events:
        if isinstance(e, GroupCreated):
            members.setdefault(e.group, set()).add(e.creator)
        elif isinstance(e, GroupJoined):
            members.setdefault(e.group, set()).add(e.member)
            linked.add(e.group)
    assert linked
    for gid in linked:
        kids = [u for u in members[gid] if u in minor_ids]
        grown = [u for u in members[gid] if u not in minor_ids]
        assert unconnected_minor_adult(kids, grown, connections) is None, (gid, kids, grown)


def test_fast_mode_summary_counts_refusals_as_server_mode(tmp_path: Path) -> None:
    sc = _group_first().with_overrides(write_events=False)
    run_scenario(sc, tmp_path, snapshots=False)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["refused"].get("group_joined:policy_violation", 0) > 0, summary
    assert summary["skipped"].get("msg:not_in_group", 0) > 0, summary

"""Mentors (benign adults who meet unknown minors) and insiders (harmful adults who abuse a tie they already
have) behave as docs/scenarios.md says, and `sim score` reports insiders and minors' reports on their own."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vigil.safety.behavior.events import ContactRequestSent, GroupJoined, MessageSent, UserId
from vigil.safety.behavior.features import FeatureExtractor
from vigil.sim.generator import EventGenerator
from vigil.sim.incidents import IncidentType
from vigil.sim.population import Population, Role, build_population
from vigil.sim.run import run_scenario
from vigil.sim.scenario import Scenario
from vigil.sim.score import aggregate, format_evaluation, score_run


def _scenario() -> Scenario:
    return Scenario().with_overrides(
        days=8,
        history_days=20,
        population={
            "minors": 400,
            "adults": 500,
            "coaches": 6,
            "groomers": 4,
            "sextortion": 4,
            "ring_members": 0,
            "school_size": 100,
            "mentor_share": 0.04,
            "insider_share": 0.02,
        },
        # The mentors who meet minors cold (safeguarding-minded mentors who go through a parent first are
        # tested in test_social_proof_withdrawing_victims_and_parents_in_the_loop).
        mentors={"new_minors_per_week": 4, "parent_in_loop_share": 0.0},
        insiders={"escalation_days": [0, 1], "coach_share": 0.5},
        groups={"interest_groups": 8},
        write_events=False,
    )


class _Sink:
    def __init__(self, ex: FeatureExtractor) -> None:
        self.events: list[object] = []
        self.ex = ex

    def emit(self, event: object) -> None:
        self.events.append(event)
        self.ex.observe(event)  # type: ignore[arg-type]


Generated = tuple[Scenario, Population, EventGenerator, _Sink]


def _generate(sc: Scenario, seed: int) -> tuple[Population, EventGenerator, _Sink]:
    rng = np.random.default_rng(seed)
    pop = build_population(sc, rng)
    ex = FeatureExtractor()
    sink = _Sink(ex)
    gen = EventGenerator(sc, pop, rng, sink)
    for facts in gen.account_facts():
        ex.register_account(facts)
    gen.emit_history()
    ex.mark_history(sc.start_ms)
    sink.events.clear()
    for d in range(sc.days):
        gen.run_day(d)
    return pop, gen, sink


@pytest.fixture(scope="module")
def generated() -> Generated:
    sc = _scenario()
    return (sc, *_generate(sc, seed=5))


def test_population_has_mentors_and_insiders_with_unique_ids(generated: Generated) -> None:
    _sc, pop, _gen, _sink = generated
    assert pop.roles.count(Role.MENTOR) == 20 and pop.roles.count(Role.INSIDER) == 10
    assert len(set(pop.ids)) == len(pop.ids) == len(pop.roles) == len(pop.created_ms)
    assert Role.INSIDER.harmful_to_minors and not Role.MENTOR.harmful_to_minors
    coaches = {t.coach for t in pop.teams}
    for who, minors in pop.insider_minors.items():
        assert minors and all(pop.roles[k] is Role.MINOR for k in minors)
        assert who in coaches or any((who, k) in pop.edges or (k, who) in pop.edges for k in minors)


def test_mentors_meet_minors_they_share_no_contact_with(generated: Generated) -> None:
    sc, pop, _gen, sink = generated
    mentors = {pop.ids[i] for i, r in enumerate(pop.roles) if r is Role.MENTOR}
    minors = {pop.ids[i] for i, r in enumerate(pop.roles) if r is Role.MINOR}
    requests = [e for e in sink.events if isinstance(e, ContactRequestSent) and e.requester in mentors]
    to_minors = [e for e in requests if e.recipient in minors]
    assert len(to_minors) >= 20, len(to_minors)
    assert any(isinstance(e, GroupJoined) and e.member in mentors for e in sink.events)
    end = sc.start_ms + sc.days * 86_400_000
    f = np.array([sink.ex.features(m, end)["minors_no_mutual_share"] for m in sorted(mentors)])
    new = np.array([sink.ex.features(m, end)["new_minor_conversations_per_day"] for m in sorted(mentors)])
    # Most of them reach new minors, and many of those minors share no contact with them (some are a
    # pupil's friend, or met through a parent).
    assert (new > 0).mean() >= 0.6 and np.median(f[new > 0]) >= 0.3, (f, new)
    # Their sessions go on: messages to pupils every day, mostly by day.
    to_pupils = [
        e for e in sink.events if isinstance(e, MessageSent) and e.sender in mentors and e.recipient in minors
    ]
    assert len(to_pupils) > 20 * sc.days


def test_insiders_abuse_existing_ties_without_requests(generated: Generated) -> None:
    _sc, pop, gen, sink = generated
    insiders = {pop.ids[i] for i in pop.insider_minors}
    minors = {pop.ids[i] for i, r in enumerate(pop.roles) if r is Role.MINOR}
    theirs = [i for i in gen.incidents if i.offender in insiders]
    victims = {(i.offender, i.victim) for i in theirs}
    # No request to a victim: the tie is old (an insider who coaches still recruits for the team).
    assert victims and not [
        e for e in sink.events if isinstance(e, ContactRequestSent) and (e.requester, e.recipient) in victims
    ]
    assert all(v in minors for _o, v in victims)
    assert {i.kind for i in theirs} >= {IncidentType.ENTICEMENT}
    known = {pop.ids[w]: {pop.ids[k] for k in ks} for w, ks in pop.insider_minors.items()}
    assert all(i.victim in known[i.offender] for i in theirs)
    engaged = {pop.ids[i] for i in gen.engaged}
    assert len(insiders & engaged) >= 8


def test_score_reports_insiders_and_minors_reports_per_role(tmp_path: Path) -> None:
    sc = _scenario().with_overrides(
        insiders={"report_prob": 1.0, "block_prob_per_day": 0.3, "escalation_days": [0, 0]},
        detection={"review_accuracy": 1.0},
    )
    run_scenario(sc, tmp_path, seed=3, snapshots=False)
    run = score_run(tmp_path)
    truth = [json.loads(x) for x in (tmp_path / "ground_truth.jsonl").read_text().splitlines()]
    insiders = [r for r in truth if r["role"] == "insider" and r["engaged_ms"] is not None]
    stranger = [r for r in truth if r["role"] in ("groomer", "sextortion", "ring_member") and r["engaged_ms"]]
    assert run.engaged["insider"]["accounts"] == len(insiders) > 0
    assert run.engaged["all"]["accounts"] == len(stranger)  # insiders are not in the headline recall
    row = run.report_to_review["insider"]
    assert row["reported"] > 0 and row["reviewed"] == row["due"] > 0
    assert row["to_review"]["max"] <= sc.detection.minor_report_review_hours
    assert row["restricted"] >= row["reviewed"] * 0.5
    reviews = [json.loads(x) for x in (tmp_path / "reviews.jsonl").read_text().splitlines()]
    assert reviews and all(r["reviewed"] - r["reported"] == 24 * 3_600_000 for r in reviews)
    text = format_evaluation([run], aggregate([run]))
    assert "insider" in text and "mentors" in text and "due reviewed" in text
    assert UserId(insiders[0]["u"])


def test_social_proof_withdrawing_victims_and_parents_in_the_loop() -> None:
    """Groomers who befriend a target's friends first reach the target with mutual contacts; victims who
    stop answering after escalation never write again while the groomer goes on; mentors who follow
    safeguarding practice meet a parent before every child who has one."""
    sc = _scenario().with_overrides(
        days=6,
        population={"groomers": 8, "sextortion": 0, "insider_share": 0.0},
        groomers={
            "social_proof_prob": 1.0,
            "withdraw_prob": 1.0,
            "escalation_days": [0, 1],
            "patient_share": 0.0,
            "group_first_share": 0.0,
            "block_prob_per_day": 0.0,
            "pursuit_days": [3, 3],
        },
        mentors={"new_minors_per_week": 4, "parent_in_loop_share": 1.0},
    )
    pop, gen, sink = _generate(sc, 11)
    end = sc.start_ms + sc.days * 86_400_000
    groomers = {pop.ids[g] for g in gen.groomers}
    mutual = [sink.ex.features(g, end)["minors_no_mutual_share"] for g in sorted(groomers)]
    # Without social proof a groomer's cold targets share no contact (about 0.9 here); now many do.
    assert min(mutual) < 0.8, mutual
    silent_victims = {
        (pop.ids[g], pop.ids[v.kid]) for g in gen.groomers for v in gen.groomer_victims[g] if v.silent
    }
    assert silent_victims
    enticed = {(i.offender, i.victim): i.at_ms for i in gen.incidents if i.kind is IncidentType.ENTICEMENT}
    for e in sink.events:
        if (
            isinstance(e, MessageSent)
            and e.recipient is not None
            and (e.recipient, e.sender) in silent_victims
        ):
            assert e.at_ms < enticed[(e.recipient, e.sender)] + 60_000, "a silent victim wrote again"
    gone = sum(sink.ex.features(g, end)["new_minors_gone_silent"] for g in groomers)
    assert gone >= len(silent_victims) // 2, (gone, len(silent_victims))
    mentors = {pop.ids[i]: i for i, r in enumerate(pop.roles) if r is Role.MENTOR}
    minors = {pop.ids[i]: i for i, r in enumerate(pop.roles) if r is Role.MINOR}
    requested: dict[UserId, list[tuple[int, UserId]]] = {}
    for e in sink.events:
        if isinstance(e, ContactRequestSent) and e.requester in mentors:
            requested.setdefault(e.requester, []).append((e.at_ms, e.recipient))
    checked = 0
    for m, reqs in requested.items():
        for at, kid in reqs:
            parents = {pop.ids[p] for p in pop.parents_of.get(minors.get(kid, -1), [])}
            if kid in minors and parents:
                checked += 1
                assert any(r in parents and t < at for t, r in reqs), (m, kid)
    assert checked >= 10

"""Incident ground truth and the retention comparison: hand-made incidents scored by both sides, and the
generator's incident log (every type, prevented incidents once restricted, the modified-client share)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from vigil.errors import ValidationError
from vigil.safety.behavior.events import ContactRequestSent, GroupId, ReportFiled, ReportReason, UserId
from vigil.safety.behavior.features import DAY_MS, HOUR_MS
from vigil.sim.generator import EventGenerator
from vigil.sim.incidents import Incident, IncidentType, incident_from_record, incident_to_record
from vigil.sim.population import Role, build_population
from vigil.sim.retention import classify_incidents, retention_table
from vigil.sim.scenario import DetectionSettings, Scenario

T = IncidentType
G, K, R = UserId("groomer"), UserId("kid"), UserId("ring")


def _inc(
    kind: IncidentType, at: int, *, image: bool, matchable: bool = False, modified: bool = False
) -> Incident:
    victim = None if kind is T.RING_DISTRIBUTION else K
    group = GroupId("g") if victim is None else None
    offender = R if victim is None else G
    return Incident(kind, at, offender, victim, group, image, matchable, modified, False)


def test_record_round_trip_and_malformed() -> None:
    inc = _inc(T.KNOWN_IMAGE_SHARED, 5, image=True, matchable=True)
    assert incident_from_record(incident_to_record(inc)) == inc
    ring = _inc(T.RING_DISTRIBUTION, 6, image=True, matchable=False, modified=True)
    assert incident_from_record(incident_to_record(ring)) == ring
    with pytest.raises(ValidationError, match="malformed incident"):
        incident_from_record({"type": "nonsense", "t": 1})


def test_each_side_reports_what_its_channels_can_see() -> None:
    det = DetectionSettings(
        hash_recall=1.0,
        image_classifier_recall=1.0,
        text_classifier_recall=0.0,
        report_context_days=1.0,
        receiver_side_matching=False,
    )
    incidents = [
        _inc(T.KNOWN_IMAGE_SHARED, 0, image=True, matchable=True),  # on-device match: both
        _inc(T.KNOWN_IMAGE_SHARED, 0, image=True, matchable=True, modified=True),  # server only
        _inc(T.COERCED_NEW_IMAGE, 0, image=True),  # image classifier: plaintext only
        _inc(T.ENTICEMENT, 10 * HOUR_MS, image=False),  # text classifier misses; the report covers it
        _inc(T.SEXTORTION_THREAT, 0, image=False),  # before the report's context: nobody
        Incident(T.ENTICEMENT, 0, G, K, None, False, False, False, True),  # prevented
    ]
    reports = [ReportFiled(30 * HOUR_MS, K, G, ReportReason.GROOMING)]
    outcomes = classify_incidents(incidents, reports, {G: 40 * HOUR_MS}, det, seed=1)
    got = [(o.plaintext_at is not None, o.vigil_at is not None, o.without_content) for o in outcomes]
    assert got == [
        (True, True, False),
        (True, False, True),
        (True, False, True),
        (True, True, False),
        (False, False, True),
        (False, False, False),
    ]
    assert outcomes[2].plaintext_at == int(det.image_classifier_delay_hours * HOUR_MS)
    assert outcomes[3].vigil_at == 30 * HOUR_MS
    table = retention_table(outcomes)
    assert table[T.KNOWN_IMAGE_SHARED].retention == 0.5
    assert table[T.ENTICEMENT].to_json()["prevented"] == 1 and table[T.ENTICEMENT].retention == 1.0
    assert table[T.RING_DISTRIBUTION].retention is None  # nothing to compare against
    # With matching on the recipient's device too, the modified sender no longer escapes.
    both = classify_incidents(
        incidents[:2], [], {}, det.model_copy(update={"receiver_side_matching": True}), 1
    )
    assert all(o.vigil_at is not None for o in both)


def _scenario(**rings: object) -> Scenario:
    return Scenario().with_overrides(
        days=8,
        history_days=20,
        population={
            "minors": 300,
            "adults": 300,
            "coaches": 3,
            "groomers": 8,
            "sextortion": 6,
            "ring_members": 8,
            "school_size": 100,
        },
        groomers={
            "escalation_days": [0, 1],
            "known_image_prob_per_day": 0.3,
            "victim_media_prob_per_day": 0.3,
        },
        sextortion={"accept_prob": 0.4, "victim_media_prob": 0.6},
        rings=rings,
        groups={"interest_groups": 6},
    )


class _RestrictAll:
    """Restricts every account from the start of day 5 (the generator asks per account and day)."""

    def __init__(self, gen_day: list[int]) -> None:
        self.day = gen_day

    def may_contact_minors(self, user: int) -> bool:
        return self.day[0] < 5


class _Sink:
    def __init__(self) -> None:
        self.events: list[object] = []

    def emit(self, event: object) -> None:
        self.events.append(event)


def test_generator_logs_every_type_and_prevents_after_restriction() -> None:
    sc = _scenario()
    rng = np.random.default_rng(4)
    pop = build_population(sc, rng)
    day = [0]
    sink = _Sink()
    gen = EventGenerator(sc, pop, rng, sink, _RestrictAll(day))  # type: ignore[arg-type]
    gen.emit_history()
    for d in range(sc.days):
        day[0] = d
        gen.run_day(d)
    kinds = Counter((i.kind, i.prevented) for i in gen.incidents)
    assert kinds[(T.ENTICEMENT, True)] and kinds[(T.ENTICEMENT, False)], kinds
    harmful = {pop.ids[i] for i, r in enumerate(pop.roles) if r in (Role.GROOMER, Role.SEXTORTION)}
    day5 = sc.start_ms + 5 * DAY_MS
    # Restricted from day 5: no contact request from a harmful account reaches the log after that,
    # but what they went on trying is logged as prevented.
    minors = {pop.ids[i] for i, r in enumerate(pop.roles) if r is Role.MINOR}
    late = [
        e
        for e in sink.events
        if isinstance(e, ContactRequestSent)
        and e.requester in harmful
        and e.recipient in minors
        and e.at_ms >= day5
    ]
    assert not late
    # A threat is drawn when the victim's image arrives (before day 5) and lands up to a day later.
    assert all(
        i.prevented
        for i in gen.incidents
        if i.offender in harmful and i.at_ms >= day5 + DAY_MS and i.kind is not T.SEXTORTION_THREAT
    )
    assert sum(gen.prevented_requests.values()) > 0


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_modified_client_share_is_used(share: float) -> None:
    sc = _scenario(modified_client_share=share, known_image_share=1.0)
    rng = np.random.default_rng(9)
    pop = build_population(sc, rng)
    gen = EventGenerator(sc, pop, rng, _Sink())
    gen.emit_history()
    for d in range(sc.days):
        gen.run_day(d)
    happened = Counter(i.kind for i in gen.incidents if not i.prevented)
    assert set(happened) == set(IncidentType), happened  # nothing restricts anyone here
    ring = [i for i in gen.incidents if i.kind is T.RING_DISTRIBUTION]
    assert ring and all(i.modified_client == bool(share) for i in ring)
    det = DetectionSettings(hash_recall=1.0)
    table = retention_table(classify_incidents(ring, [], {}, det, 0))[T.RING_DISTRIBUTION]
    assert table.plaintext == len(ring)
    assert table.vigil == (0 if share else len(ring))


def test_a_minors_report_is_reviewed_within_the_stated_time_whatever_the_score() -> None:
    """No risk model at all (`model=None`): every harmful account a minor reports for grooming or
    sextortion is still restricted by the reviewer, exactly `minor_report_review_hours` after the report."""
    from vigil.safety.behavior.policy import ProtectiveAction
    from vigil.sim.run import simulate

    sc = _scenario().with_overrides(
        detection={"minor_report_review_hours": 12, "review_accuracy": 1.0},
        sextortion={"report_prob": 1.0, "block_prob": 0.9},
    )
    result = simulate(sc, rng=np.random.default_rng(2), model=None)
    roles = {result.population.ids[i]: r for i, r in enumerate(result.population.roles)}
    urgent = (ReportReason.GROOMING, ReportReason.SEXTORTION)
    first: dict[UserId, int] = {}
    for rep in result.reports:
        if rep.reason in urgent and roles[rep.reporter] is Role.MINOR:
            first[rep.reported] = min(rep.at_ms, first.get(rep.reported, rep.at_ms))
    reviewed = {a.user: a for a in result.actions if a.source == "review"}
    due = {u for u, at in first.items() if at + 12 * HOUR_MS < sc.start_ms + sc.days * DAY_MS}
    assert due and due <= set(reviewed)
    for user in due:
        assert roles[user].harmful_to_minors
        assert reviewed[user].at_ms == first[user] + 12 * HOUR_MS
        assert reviewed[user].level is ProtectiveAction.OPEN_CASE
    assert all(a.source == "review" for a in result.actions)  # nothing else acted: no model

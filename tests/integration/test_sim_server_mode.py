"""`vigil sim run --mode server` end to end on a very small scenario: real server, real encryption."""

from __future__ import annotations

import json
from pathlib import Path

from vigil.safety.behavior.events import event_from_record
from vigil.sim.scenario import tiny_scenario
from vigil.sim.score import format_report, score_dir
from vigil.sim.server_mode import run_server_mode


async def test_server_mode_on_a_tiny_scenario(tmp_path: Path) -> None:
    # ~30 accounts, ~500 events (each a real request with real encryption): still every kind of event,
    # family and team groups, a groomer and a sextortion account.
    sc = tiny_scenario().with_overrides(
        days=1,
        history_days=5,
        coaches={"team_size": [4, 8]},
        population={"minors": 16, "adults": 12, "school_size": 16, "class_size": 8},
    )
    out = tmp_path / "out"
    days: list[int] = []
    result = await run_server_mode(sc, out, on_day=days.append)
    assert result.accounts > 20 and result.recorded > 0
    assert days == list(range(sc.days))  # the progress callback saw every simulated day
    records = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    events = [event_from_record(r) for r in records]  # what the server recorded, in the shared format
    assert len(events) == result.recorded
    assert {r["k"] for r in records} >= {"msg", "req", "req_accepted"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == "server" and summary["events"] == result.recorded
    assert "groomer" in format_report(score_dir(out))
    # Pre-existing family and team groups are replayed after the ties they need: the server refuses no
    # group add (before the fix, 19 adds of children to their own family groups were refused).
    assert not [k for k in result.refused if k.startswith(("group_member_added", "msg:"))], result.refused


async def test_server_mode_joins_groups_by_link_and_reviews_minors_reports(tmp_path: Path) -> None:
    """Every groomer is group-first: joins an interest group by link before picking targets. The joins go
    through `POST /v1/groups/join`, so the server's own metadata log carries them, and the server applies
    its minors' group rule to each one. Every minor a harmful account approaches blocks and reports it, and
    the simulated reviewer decides each such report's case through the server's review path, one hour
    after the report (the scenario's bound)."""
    sc = tiny_scenario().with_overrides(
        name="tiny-group-first",
        days=1,
        history_days=5,
        coaches={"team_size": [4, 8]},
        population={"minors": 12, "adults": 10, "school_size": 12, "class_size": 6, "groomers": 2},
        groomers={
            "group_first_share": 1.0,
            "patient_share": 0.0,
            "block_on_request_prob": 1.0,
            "report_prob": 1.0,
        },
        sextortion={"block_on_request_prob": 1.0, "report_prob": 1.0},
        detection={"minor_report_review_hours": 1},
    )
    out = tmp_path / "out"
    result = await run_server_mode(sc, out)
    records = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    truth = [json.loads(line) for line in (out / "ground_truth.jsonl").read_text().splitlines()]
    role_of = {t["u"]: t["role"] for t in truth}
    groomers = {u for u, role in role_of.items() if role == "groomer"}
    assert {t["style"] for t in truth if t["role"] == "groomer"} == {"group_first"}
    joins = [r for r in records if r["k"] == "group_joined"]
    # The server logged link joins, the group-first groomers' among them (in the generator's order the
    # interest groups' adults join first, so the groomers find adults-only groups and get in).
    assert joins and {r["s"] for r in joins} & groomers, joins
    # Minors the generator puts in a group with adults they do not know were kept out by the server, and
    # their messages to those groups were not sent.
    assert result.refused.get("group_joined:policy_violation", 0) > 0, result.refused
    assert result.skipped.get("msg:not_in_group", 0) > 0, result.skipped
    assert "msg:not_found" not in result.refused, result.refused  # no group send from outside a group
    assert not [k for k in result.refused if k.startswith("group_member_added")], result.refused

    # The reviewer: every minor's grooming or sextortion report the server took is reviewed at the bound.
    minors = {u for u, role in role_of.items() if role == "minor"}
    urgent = [
        r
        for r in records
        if r["k"] == "report" and r["why"] in ("grooming", "sextortion") and r["s"] in minors
    ]
    reviews = [json.loads(line) for line in (out / "reviews.jsonl").read_text().splitlines()]
    assert urgent and reviews
    due = [r for r in urgent if r["t"] + 3600_000 <= sc.start_ms + sc.days * 24 * 3600_000]
    assert len(reviews) == len(due)
    assert all(r["reviewed"] - r["reported"] == 3600_000 for r in reviews)
    restricted = [r for r in reviews if r["outcome"] == "restricted"]
    assert restricted and all(role_of[r["u"]] in ("groomer", "sextortion") for r in restricted)
    actions = [json.loads(line) for line in (out / "actions.jsonl").read_text().splitlines()]
    by_review = {(a["u"], a["t"]) for a in actions if a["source"] == "review"}
    assert by_review == {(r["u"], r["reviewed"]) for r in restricted}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped"] == result.skipped and summary["reviews"] == len(reviews)
    assert "groomer" in format_report(score_dir(out))


def test_group_adds_wait_for_the_connection_they_need() -> None:
    from vigil.safety.behavior import events as ev
    from vigil.sim.server_mode import connections_before_group_adds

    parent, child, group = ev.UserId("p"), ev.UserId("c"), ev.GroupId("g")
    batch: list[ev.MetadataEvent] = [
        ev.GroupCreated(10, parent, group),
        ev.GroupMemberAdded(11, parent, child, group),
        ev.ContactRequestSent(50, parent, child),
        ev.ContactRequestAnswered(60, parent, child, ev.RequestOutcome.ACCEPTED),
    ]
    replayed = connections_before_group_adds(batch)
    assert [(type(e).__name__, e.at_ms) for e in replayed] == [
        ("GroupCreated", 10),
        ("ContactRequestSent", 50),
        ("ContactRequestAnswered", 60),
        ("GroupMemberAdded", 61),
    ]


def test_a_group_add_waits_for_the_connections_to_every_member() -> None:
    from vigil.safety.behavior import events as ev
    from vigil.sim.server_mode import connections_before_group_adds

    parent, uncle, child, group = ev.UserId("p"), ev.UserId("u"), ev.UserId("c"), ev.GroupId("g")
    batch: list[ev.MetadataEvent] = [
        ev.GroupCreated(10, parent, group),
        ev.GroupMemberAdded(11, parent, uncle, group),
        ev.ContactRequestAnswered(20, parent, child, ev.RequestOutcome.ACCEPTED),
        ev.GroupMemberAdded(30, parent, child, group),
        ev.ContactRequestAnswered(70, uncle, child, ev.RequestOutcome.ACCEPTED),
    ]
    replayed = connections_before_group_adds(batch)
    assert [(type(e).__name__, e.at_ms) for e in replayed][-2:] == [
        ("ContactRequestAnswered", 70),
        ("GroupMemberAdded", 71),
    ]


def test_a_join_by_link_waits_for_the_connection_it_needs() -> None:
    from vigil.safety.behavior import events as ev
    from vigil.sim.server_mode import connections_before_group_adds

    coach, child, group = ev.UserId("co"), ev.UserId("c"), ev.GroupId("g")
    batch: list[ev.MetadataEvent] = [
        ev.GroupCreated(10, coach, group),
        ev.GroupJoined(11, child, group),
        ev.ContactRequestAnswered(40, coach, child, ev.RequestOutcome.ACCEPTED),
    ]
    replayed = connections_before_group_adds(batch)
    assert [(type(e).__name__, e.at_ms) for e in replayed][-2:] == [
        ("ContactRequestAnswered", 40),
        ("GroupJoined", 41),
    ]

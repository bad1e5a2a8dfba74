"""A case's metadata timeline names the accounts in its events by username, computing pseudonyms only for
the accounts the subject is related to (and, only for a name still unresolved, scanning the others until
it is found): not one HMAC per account on the server per timeline."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from live_server import backend_database

from vigil.protocol.contacts import ContactRequestState
from vigil.safety.behavior.events import MetadataEvent, event_to_record
from vigil.server.context import ServerContext
from vigil.server.db.accounts import UserRow
from vigil.server.db.contacts import BlockRow, ContactRequestRow
from vigil.server.db.groups import GroupRow, MembershipPeriodRow
from vigil.server.db.metadata import MetadataEventRow
from vigil.server.db.pseudonyms import pseudonym
from vigil.server.services import metadata
from vigil.server.settings import Settings

T0 = 1_800_000_000_000
BYSTANDERS = 300


def _who(event: MetadataEvent) -> tuple[object, object, object]:
    record = event_to_record(event)
    return record["k"], record["s"], record.get("r")


@pytest.fixture(params=["sqlite", "postgres"])
async def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ServerContext]:
    with backend_database(request.param) as url:
        async with ServerContext.open(
            Settings(data_dir=tmp_path, database_url=url), clock_ms=lambda: T0
        ) as context:
            yield context


async def test_a_timeline_names_its_accounts_without_a_pseudonym_per_account(
    ctx: ServerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = ["mallory", "kid", "eve", "gina"] + [f"user{i}" for i in range(BYSTANDERS)] + ["zed"]
    async with ctx.sessions() as session, session.begin():
        users = [UserRow(username=name, age_band="adult", created_at_ms=T0) for name in names]
        session.add_all(users)
        await session.flush()
        ids = {u.username: u.id for u in users}
        session.add(GroupRow(id="g", created_by_user_id=ids["mallory"], created_at_ms=T0))
        await session.flush()
        alias = {
            name: metadata.pseudonym_of(ctx, ids[name]) for name in ("mallory", "kid", "eve", "gina", "zed")
        }
        session.add_all(
            [
                ContactRequestRow(
                    requester_user_id=ids["mallory"],
                    recipient_user_id=ids["kid"],
                    state=ContactRequestState.ACCEPTED.value,
                    created_at_ms=T0,
                ),
                BlockRow(blocker_user_id=ids["eve"], blocked_user_id=ids["mallory"], created_at_ms=T0),
                MembershipPeriodRow(group_id="g", user_id=ids["mallory"], joined_at_ms=T0),
                MembershipPeriodRow(group_id="g", user_id=ids["gina"], joined_at_ms=T0),
                MetadataEventRow(at_ms=T0, kind="req", actor=alias["mallory"], target=alias["kid"]),
                MetadataEventRow(
                    at_ms=T0 + 1000, kind="msg", actor=alias["mallory"], target=alias["kid"], content="text"
                ),
                MetadataEventRow(at_ms=T0 + 2000, kind="block", actor=alias["eve"], target=alias["mallory"]),
                MetadataEventRow(
                    at_ms=T0 + 3000,
                    kind="group_member_added",
                    actor=alias["mallory"],
                    target=alias["gina"],
                    group_id="g",
                ),
                # Someone else's event: not in mallory's timeline.
                MetadataEventRow(
                    at_ms=T0 + 4000, kind="msg", actor=alias["zed"], target=alias["kid"], content="text"
                ),
            ]
        )
    computed: list[int] = []

    def counting_pseudonym(key: bytes, user_id: int) -> str:
        computed.append(user_id)
        return pseudonym(key, user_id)

    monkeypatch.setattr(metadata, "pseudonym", counting_pseudonym)
    async with ctx.sessions() as session:
        timeline = await metadata.timeline(ctx, session, ids["mallory"])
    assert [_who(e) for e in timeline] == [
        ("req", "mallory", "kid"),
        ("msg", "mallory", "kid"),
        ("block", "eve", "mallory"),
        ("group_member_added", "mallory", "gina"),
    ]
    assert len(computed) <= 5, f"{len(computed)} pseudonyms computed for a timeline naming 4 accounts"

    # An account whose relation's record is gone (here: never kept) is still named, by the fallback scan.
    async with ctx.sessions() as session, session.begin():
        session.add(
            MetadataEventRow(
                at_ms=T0 + 5000, kind="msg", actor=alias["mallory"], target=alias["zed"], content="text"
            )
        )
    computed.clear()
    async with ctx.sessions() as session:
        timeline = await metadata.timeline(ctx, session, ids["mallory"])
    assert _who(timeline[-1]) == ("msg", "mallory", "zed")
    assert len(computed) <= len(names) + 1

"""The repositories that took over the services' queries (contacts, metadata, notices, audit, standing,
reviewers, conversations), on a migrated SQLite database and (when reachable) PostgreSQL. Each test
runs in one transaction, as a service would; repositories never commit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from live_server import create_postgres_database, drop_postgres_database, require_backend
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.protocol.contacts import ContactRequestState
from vigil.protocol.ids import UserId
from vigil.server.db.accounts import AccountActionRow, StandingRepository, UserRepository, UserRow
from vigil.server.db.audit import AuditRepository
from vigil.server.db.contacts import ContactRepository, ContactRequestRow
from vigil.server.db.engine import create_engine, migrate, session_factory
from vigil.server.db.messaging import MessageRepository, MessageRow
from vigil.server.db.metadata import MetadataEventRow, MetadataRepository, RiskStateRepository
from vigil.server.db.notices import NoticeRepository, NoticeRow
from vigil.server.db.reviewers import ConsoleSessionRow, ReviewerRepository, ReviewerRow

T0 = 1_800_000_000_000


@pytest.fixture(params=["sqlite", "postgres"])
async def session(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncSession]:
    require_backend(request.param)
    database = None
    url = f"sqlite+aiosqlite:///{tmp_path / 'repositories.db'}"
    if request.param == "postgres":
        database, url = create_postgres_database()
    engine = create_engine(url)
    try:
        await migrate(engine)
        async with session_factory(engine)() as session, session.begin():
            yield session
    finally:
        await engine.dispose()
        if database is not None:
            drop_postgres_database(database)


async def _users(session: AsyncSession, *names: str) -> list[UserRow]:
    users = UserRepository(session)
    return [await users.add(UserRow(username=n, age_band="adult", created_at_ms=T0)) for n in names]


async def _request(
    session: AsyncSession, a: UserRow, b: UserRow, at_ms: int, state: str
) -> ContactRequestRow:
    return await ContactRepository(session).add_request(
        ContactRequestRow(requester_user_id=a.id, recipient_user_id=b.id, state=state, created_at_ms=at_ms)
    )


async def test_contact_requests_pending_sent_and_expiring(session: AsyncSession) -> None:
    alice, bob, carol = await _users(session, "alice", "bob", "carol")
    contacts = ContactRepository(session)
    pending = ContactRequestState.PENDING.value
    first = await _request(session, alice, bob, T0, pending)
    await _request(session, alice, carol, T0 + 10, ContactRequestState.IGNORED.value)
    await _request(session, carol, bob, T0 + 20, pending)

    assert await contacts.request(first.id) is first
    assert await contacts.pending(alice.id, bob.id) is first
    assert await contacts.pending(bob.id, alice.id) is None
    assert await contacts.pending(alice.id, carol.id) is None  # answered
    assert await contacts.sent_since(alice.id, T0 - 1) == 2
    assert await contacts.sent_since(alice.id, T0) == 1
    assert [r.requester_user_id for r in await contacts.pending_to(bob.id, limit=10)] == [alice.id, carol.id]
    assert [r.requester_user_id for r in await contacts.pending_to(bob.id, limit=1)] == [alice.id]
    assert [r.recipient_user_id for r in await contacts.sent_by(alice.id, limit=10)] == [carol.id, bob.id]
    assert [r.id for r in await contacts.pending_before(T0 + 20)] == [first.id]


async def test_connections_are_symmetric_and_list_names(session: AsyncSession) -> None:
    alice, bob, carol = await _users(session, "alice", "bob", "carol")
    contacts = ContactRepository(session)
    assert not await contacts.connected(alice.id, bob.id)
    contacts.connect(bob.id, alice.id, T0)
    contacts.connect(carol.id, bob.id, T0)
    await session.flush()
    assert await contacts.connected(alice.id, bob.id) and await contacts.connected(bob.id, alice.id)
    assert not await contacts.connected(alice.id, carol.id)
    assert list(await contacts.contacts_of(bob.id)) == ["alice", "carol"]
    assert list(await contacts.contacts_of(alice.id)) == ["bob"]


async def test_a_conversation_exists_once_either_side_has_written(session: AsyncSession) -> None:
    alice, bob, carol = await _users(session, "alice", "bob", "carol")
    session.add(
        MessageRow(
            client_id="m1",
            sender_user_id=bob.id,
            sender_device_id="B1",
            conversation="alice",
            kind="text",
            commitment=bytes(32),
            franking_tag=bytes(32),
            server_ts_ms=T0,
            device_count=1,
        )
    )
    await session.flush()
    messages = MessageRepository(session)
    assert await messages.has_conversation(alice.id, UserId("alice"), bob.id, UserId("bob"))
    assert await messages.has_conversation(bob.id, UserId("bob"), alice.id, UserId("alice"))
    assert not await messages.has_conversation(alice.id, UserId("alice"), carol.id, UserId("carol"))


def _event(at_ms: int, actor: str, target: str | None) -> MetadataEventRow:
    return MetadataEventRow(at_ms=at_ms, kind="block", actor=actor, target=target)


async def test_metadata_events_by_window_by_account_and_retention(session: AsyncSession) -> None:
    events = MetadataRepository(session)
    for row in (_event(T0 + 2, "bob", "alice"), _event(T0, "alice", "bob"), _event(T0 + 1, "carol", None)):
        events.add(row)
    await session.flush()
    assert [r.at_ms for r in await events.between(T0, T0 + 2)] == [T0, T0 + 1]
    assert [r.at_ms for r in await events.latest_involving(UserId("alice"), 10)] == [T0 + 2, T0]
    assert [r.at_ms for r in await events.latest_involving(UserId("alice"), 1)] == [T0 + 2]
    assert await events.delete_before(T0 + 1) == 1
    assert [r.at_ms for r in await events.between(0, T0 + 10)] == [T0 + 1, T0 + 2]


async def test_risk_state_round_trip(session: AsyncSession) -> None:
    (alice,) = await _users(session, "alice")
    states = RiskStateRepository(session)
    assert await states.get(alice.id) is None
    await states.put_many(
        [
            {
                "user_id": alice.id,
                "level": "safety_notice",
                "score": 0.6,
                "reasons": "[]",
                "case_id": None,
                "updated_at_ms": T0,
            }
        ],
        existing=(),
    )
    found = await states.get(alice.id)
    assert found is not None and found.level == "safety_notice"


async def test_notices_and_signed_safety_notices(session: AsyncSession) -> None:
    alice, bob, carol = await _users(session, "alice", "bob", "carol")
    notices = NoticeRepository(session)
    notices.add(NoticeRow(user_id=alice.id, kind="warning", text="w", created_at_ms=T0))
    await session.flush()
    (warning,) = await notices.notices(alice.id, 0)
    assert list(await notices.notices(alice.id, warning.id)) == []

    def unsigned(subject: UserRow, kind: str) -> dict[str, object]:
        return {
            "user_id": alice.id,
            "subject_user_id": subject.id,
            "kind": kind,
            "payload": b"",
            "signature": b"",
            "created_at_ms": T0,
        }

    # Ids come back in the order given (the signed body carries the id), and signing fills each row.
    first_id, second_id = await notices.add_unsigned_safety_notices(
        [unsigned(bob, "elevated_risk"), unsigned(carol, "unconnected_adult")]
    )
    assert first_id < second_id
    await notices.sign_safety_notices([(first_id, b"p1", bytes(64)), (second_id, b"p2", bytes([1]) * 64)])
    first, second = await notices.safety_notices(alice.id, 0)
    assert (first.id, first.subject_user_id, bytes(first.payload)) == (first_id, bob.id, b"p1")
    assert (second.id, second.subject_user_id, bytes(second.signature)) == (
        second_id,
        carol.id,
        bytes([1]) * 64,
    )
    assert [r.id for r in await notices.safety_notices(alice.id, 0)] == [first.id, second.id]
    assert [r.id for r in await notices.safety_notices(alice.id, first.id)] == [second.id]
    assert [r.id for r in await notices.safety_notices(alice.id, 0, limit=1)] == [first.id]
    assert await notices.has_safety_notice(alice.id, bob.id, "elevated_risk")
    assert not await notices.has_safety_notice(alice.id, carol.id, "elevated_risk")
    assert not await notices.has_safety_notice(bob.id, alice.id, "elevated_risk")
    asked = {(alice.id, bob.id), (bob.id, bob.id), (alice.id, carol.id), (bob.id, carol.id)}
    assert await notices.shown_safety_notices(asked, "elevated_risk") == {(alice.id, bob.id)}
    assert await notices.shown_safety_notices(asked, "unconnected_adult") == {(alice.id, carol.id)}
    assert await notices.shown_safety_notices([], "elevated_risk") == set()


async def test_standing_is_replaced_and_cleared(session: AsyncSession) -> None:
    (alice,) = await _users(session, "alice")
    standings = StandingRepository(session)
    assert await standings.get(alice.id) is None
    await standings.set(alice.id, "restricted", T0)
    await session.flush()
    found = await standings.get(alice.id)
    assert found is not None and found.standing == "restricted"
    await standings.set(alice.id, "suspended", T0 + 1)
    await session.flush()
    session.expunge_all()
    found = await standings.get(alice.id)
    assert found is not None and (found.standing, found.updated_at_ms) == ("suspended", T0 + 1)
    await standings.set(alice.id, None, T0 + 2)
    await session.flush()
    session.expunge_all()
    assert await standings.get(alice.id) is None
    standings.add_action(
        AccountActionRow(user_id=alice.id, action="lift", case_id=None, reviewer_id=None, created_at_ms=T0)
    )
    await session.flush()


async def test_the_audit_head_numbers_and_links_entries(session: AsyncSession) -> None:
    audit = AuditRepository(session)

    def entry(n: int, prev: bytes) -> dict[str, object]:
        return {
            "id": n,
            "ts_ms": T0,
            "actor": "a",
            "action": "x",
            "target": f"t{n}",
            "details": "{}",
            "prev_hash": prev,
            "entry_hash": bytes([n]) * 32,
        }

    for n in (1, 2):
        taken = await audit.take_seqs(1)
        assert taken is not None
        seq, prev = taken
        assert seq == n and prev == (bytes(32) if n == 1 else bytes([1]) * 32)
        await audit.append_many([entry(seq, prev)])
    # Several at once: the head moves by their number, and the first taken follows the last entry.
    taken = await audit.take_seqs(2)
    assert taken == (3, bytes([2]) * 32)
    await audit.append_many([entry(3, bytes([2]) * 32), entry(4, bytes([3]) * 32)])
    head = await audit.head()
    assert head is not None and (head.seq, bytes(head.last_hash)) == (4, bytes([4]) * 32)
    assert [r.id for r in await audit.recent(10)] == [4, 3, 2, 1]
    assert [r.id for r in await audit.for_target("t1", 10)] == [1]
    assert [r.id for r in await audit.after(1, 10)] == [2, 3, 4]


async def test_reviewers_and_their_console_sessions(session: AsyncSession) -> None:
    reviewers = ReviewerRepository(session)

    def reviewer(name: str) -> ReviewerRow:
        return ReviewerRow(
            username=name,
            password_hash="h",
            role="reviewer",
            failed_logins=0,
            locked_until_ms=0,
            disabled=False,
            created_at_ms=T0,
        )

    zed = await reviewers.add(reviewer("zed"))
    amy = await reviewers.add(reviewer("amy"))
    assert await reviewers.name_taken("amy") and not await reviewers.name_taken("bob")
    assert await reviewers.by_username("zed") is zed and await reviewers.get(amy.id) is amy
    assert [r.username for r in await reviewers.all()] == ["amy", "zed"]
    for token, who in ((b"a" * 32, amy), (b"b" * 32, amy), (b"z" * 32, zed)):
        reviewers.add_session(
            ConsoleSessionRow(
                token_sha256=token,
                reviewer_id=who.id,
                csrf_token="c",
                revealed="",
                created_at_ms=T0,
                expires_at_ms=T0,
            )
        )
    await session.flush()
    found = await reviewers.console_session_with_reviewer(b"z" * 32)
    assert found is not None and found[1] is zed and found[0].token_sha256 == b"z" * 32
    assert await reviewers.console_session_with_reviewer(b"x" * 32) is None
    await reviewers.end_session(b"z" * 32)
    await reviewers.end_sessions_of(amy.id)
    session.expunge_all()
    for token in (b"a" * 32, b"b" * 32, b"z" * 32):
        assert await reviewers.console_session(token) is None

"""Group invite links through a real server with real Olm + Megolm, on SQLite and PostgreSQL: an admin
issues and revokes a link, a user who holds it joins, members' devices share keys with the newcomer as
with an added member, the join is in the metadata log, and a join by link meets the same safety rules as
an add (minors' protective defaults, blocks, restricted accounts). Every bad request is a 4xx JSON error."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from helpers import TEEN_14, auth_headers, connect, group_texts, register
from live_server import ServerProcess
from safety_helpers import server_context, set_standing

from vigil.errors import ConflictError, GoneError, NotFoundError, PermissionDenied, PolicyViolation
from vigil.safety.behavior.events import GroupJoined, GroupMemberAdded
from vigil.safety.policy import NEUTRAL_REFUSAL, Standing
from vigil.server.db.groups import InviteLinkRow
from vigil.server.services import metadata


async def _logged_joins(server: ServerProcess, group_id: str) -> list[tuple[str, str]]:
    """(kind, member) of the group's membership events in the server's metadata log, named back."""
    async with server_context(server.data_dir, server.database_url) as ctx, ctx.sessions() as session:
        names = await metadata.pseudonyms_to_usernames(ctx, session)
        events = await metadata.load_events(session, 0, ctx.clock_ms() + 1, names=names)
    return [
        (e.kind.value, e.member)
        for e in events
        if isinstance(e, GroupJoined | GroupMemberAdded) and e.group == group_id
    ]


async def test_a_link_joins_a_member_who_then_reads_and_writes_the_group(
    server: ServerProcess, tmp_path: Path
) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    carol = await register(server.url, tmp_path, "carol")
    group = (await alice.groups.create([bob.username], name="Hikers")).group_id
    await alice.groups.send_text(group, "before carol")
    assert group_texts(await bob.fetch(), group) == ["before carol"]

    link = await alice.groups.create_invite_link(group)
    assert link.group_id == group and len(link.token) == 43
    info = await carol.groups.join(link.token)
    assert info.group_id == group
    assert {(m.username, m.role.value) for m in info.members} == {
        (alice.username, "admin"),
        (bob.username, "member"),
        (carol.username, "member"),
    }
    # The members' devices learn of carol as of an added member: bob's cached device list is stale, the
    # server says so (409), bob shares his session key with carol's device and the message goes through.
    sent = await bob.groups.send_text(group, "welcome carol")
    assert sent.devices == 2
    assert group_texts(await carol.fetch(), group) == ["welcome carol"]
    await carol.groups.send_text(group, "hi all")
    for member in (alice, bob):
        assert group_texts(await member.fetch(), group)[-1] == "hi all"
    # The server's metadata log carries the join as the behavioural layer expects it (GroupJoined).
    assert await _logged_joins(server, group) == [
        ("group_member_added", bob.username),
        ("group_joined", carol.username),
    ]
    # The server keeps the token's hash, never the token.
    async with server_context(server.data_dir, server.database_url) as ctx, ctx.sessions() as session:
        rows = (await session.execute(InviteLinkRow.__table__.select())).all()
    assert rows and all(link.token.encode() not in bytes(row.token_hash) for row in rows)

    with pytest.raises(ConflictError):
        await carol.groups.join(link.token)  # already a member
    for client in (alice, bob, carol):
        await client.close()


async def test_only_admins_issue_and_revoke_links_and_a_revoked_link_is_gone(
    server: ServerProcess, tmp_path: Path
) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    stranger = await register(server.url, tmp_path, "stranger")
    late = await register(server.url, tmp_path, "late")
    group = (await alice.groups.create([bob.username])).group_id
    with pytest.raises(PermissionDenied):
        await bob.groups.create_invite_link(group)  # a member, not an admin: 403
    with pytest.raises(NotFoundError):
        await stranger.groups.create_invite_link(group)  # not a member: the group is not revealed
    with pytest.raises(NotFoundError):
        await alice.groups.revoke_invite_link(group)  # no live link yet

    first = await alice.groups.create_invite_link(group)
    second = await alice.groups.create_invite_link(group)  # a new link replaces the old one
    with pytest.raises(GoneError):
        await stranger.groups.join(first.token)
    with pytest.raises(PermissionDenied):
        await bob.groups.revoke_invite_link(group)
    await stranger.groups.join(second.token)
    await alice.groups.revoke_invite_link(group)
    with pytest.raises(GoneError):
        await late.groups.join(second.token)
    with pytest.raises(NotFoundError):
        await alice.groups.revoke_invite_link(group)  # nothing live left to revoke
    info = await alice.groups.info(group)
    assert {m.username for m in info.members} == {alice.username, bob.username, stranger.username}

    async with httpx.AsyncClient(base_url=server.url) as http:
        unknown = await http.post("/v1/groups/join", json={"token": "x" * 43}, headers=auth_headers(late))
        assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
        revoked = await http.post("/v1/groups/join", json={"token": second.token}, headers=auth_headers(late))
        assert revoked.status_code == 410
        assert revoked.json() == {"error": "gone", "detail": "this invite link was revoked"}
        for body in ({"token": "short"}, {"token": "!" * 43}, {}, {"token": second.token, "extra": 1}):
            malformed = await http.post("/v1/groups/join", json=body, headers=auth_headers(late))
            assert malformed.status_code == 422, malformed.text
            assert malformed.json()["error"] == "invalid_request"
            assert second.token not in malformed.text  # a token is never echoed back
        not_json = await http.post(
            "/v1/groups/join",
            content=b"{",
            headers={**auth_headers(late), "Content-Type": "application/json"},
        )
        assert not_json.status_code == 400 and not_json.json()["error"] == "malformed_json"
        anonymous = await http.post("/v1/groups/join", json={"token": "x" * 43})
        assert anonymous.status_code == 401
        bad_group = await http.post("/v1/groups/NOT-A-GROUP/link", headers=auth_headers(alice))
        assert bad_group.status_code == 422
    for client in (alice, bob, stranger, late):
        await client.close()


async def test_a_link_does_not_bring_an_unknown_adult_to_minors_or_a_minor_to_unknown_adults(
    server: ServerProcess, tmp_path: Path
) -> None:
    parent = await register(server.url, tmp_path, "parent")
    coach = await register(server.url, tmp_path, "coach")
    stranger = await register(server.url, tmp_path, "stranger")
    teen = await register(server.url, tmp_path, "teen", TEEN_14)
    other_teen = await register(server.url, tmp_path, "teen2", TEEN_14)
    await connect(parent, teen)
    family = (await parent.groups.create([teen.username])).group_id
    link = await parent.groups.create_invite_link(family)

    # An adult the teen is not connected to cannot join a group holding the teen: one neutral refusal.
    async with httpx.AsyncClient(base_url=server.url) as http:
        refused = await http.post(
            "/v1/groups/join", json={"token": link.token}, headers=auth_headers(stranger)
        )
    assert refused.status_code == 403
    assert refused.json() == {"error": "policy_violation", "detail": NEUTRAL_REFUSAL}
    # Another minor joins only once connected to the adult in the group (minors among themselves need
    # no connection)...
    with pytest.raises(PolicyViolation, match=f"^{NEUTRAL_REFUSAL}$"):
        await other_teen.groups.join(link.token)
    await connect(parent, other_teen)
    await other_teen.groups.join(link.token)
    # ...which now keeps out an adult connected to the first teen but not to the second.
    await connect(coach, teen)
    with pytest.raises(PolicyViolation, match=f"^{NEUTRAL_REFUSAL}$"):
        await coach.groups.join(link.token)
    await connect(coach, other_teen)
    await coach.groups.join(link.token)  # connected to every minor in it: allowed

    # A minor cannot join by link a group holding an adult they are not connected to.
    adults = (await stranger.groups.create([])).group_id
    adults_link = await stranger.groups.create_invite_link(adults)
    with pytest.raises(PolicyViolation, match=f"^{NEUTRAL_REFUSAL}$"):
        await teen.groups.join(adults_link.token)
    info = await parent.groups.info(family)
    assert {m.username for m in info.members} == {
        parent.username,
        teen.username,
        other_teen.username,
        coach.username,
    }
    assert [m for _, m in await _logged_joins(server, adults)] == []
    assert [m for kind, m in await _logged_joins(server, family) if kind == "group_joined"] == [
        other_teen.username,
        coach.username,
    ]
    for client in (parent, coach, stranger, teen, other_teen):
        await client.close()


async def test_blocked_and_restricted_accounts_cannot_join_by_link(
    server: ServerProcess, tmp_path: Path
) -> None:
    admin = await register(server.url, tmp_path, "admin")
    member = await register(server.url, tmp_path, "member")
    blocked = await register(server.url, tmp_path, "blocked")
    restricted = await register(server.url, tmp_path, "restricted")
    teen = await register(server.url, tmp_path, "teen", TEEN_14)
    group = (await admin.groups.create([member.username])).group_id
    link = await admin.groups.create_invite_link(group)

    # A member blocked the joiner: the link does not reach them (neutral refusal).
    await member.block(blocked.username)
    with pytest.raises(PolicyViolation, match=f"^{NEUTRAL_REFUSAL}$"):
        await blocked.groups.join(link.token)

    # A restricted account starts no new conversations: it joins nothing by link, with minors or not,
    # even where it is connected to every minor in the group.
    await connect(restricted, teen)
    await connect(admin, teen)
    await connect(member, teen)
    with_teen = (await admin.groups.create([teen.username])).group_id
    teen_link = await admin.groups.create_invite_link(with_teen)
    await set_standing(server, restricted, Standing.RESTRICTED)
    for token in (link.token, teen_link.token):
        with pytest.raises(PolicyViolation, match=f"^{NEUTRAL_REFUSAL}$"):
            await restricted.groups.join(token)
    # A restricted admin issues no links (they would invite new conversations).
    own = (await restricted.groups.create([])).group_id
    with pytest.raises(PolicyViolation, match=f"^{NEUTRAL_REFUSAL}$"):
        await restricted.groups.create_invite_link(own)
    # Once lifted, the same link works.
    await set_standing(server, restricted, Standing.ACTIVE)
    await restricted.groups.join(teen_link.token)
    assert [m for _, m in await _logged_joins(server, group)] == [member.username]
    for client in (admin, member, blocked, restricted, teen):
        await client.close()


async def test_concurrent_link_issues_leave_one_live_link(server: ServerProcess, tmp_path: Path) -> None:
    """Issues of one group are serialized on the group row: however they interleave, exactly one link
    stays live (the others answer 410), and a revoke leaves none."""
    alice = await register(server.url, tmp_path, "alice")
    carol = await register(server.url, tmp_path, "carol")
    group = (await alice.groups.create([])).group_id
    links = await asyncio.gather(*(alice.groups.create_invite_link(group) for _ in range(6)))

    async def live_links() -> int:
        async with server_context(server.data_dir, server.database_url) as ctx, ctx.sessions() as session:
            rows = (await session.execute(InviteLinkRow.__table__.select())).all()
        return sum(1 for row in rows if row.group_id == group and row.revoked_at_ms is None)

    assert await live_links() == 1
    joined = 0
    for link in links:  # a second live link would answer carol 409 (already a member), failing the test
        try:
            await carol.groups.join(link.token)
        except GoneError:
            continue
        joined += 1
    assert joined == 1
    await alice.groups.revoke_invite_link(group)
    assert await live_links() == 0
    for client in (alice, carol):
        await client.close()

"""The send and group-add checks: the facts they load (standing, blocks, connections, conversations)
reach the pure rules of `vigil.safety.policy`; every refusal that depends on the other person reads
the same (`NEUTRAL_REFUSAL`), a suspension says so. On a migrated SQLite database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from vigil.errors import PolicyViolation
from vigil.protocol.ids import UserId
from vigil.protocol.wire import AgeBand
from vigil.safety.policy import NEUTRAL_REFUSAL, Standing
from vigil.server.context import ServerContext
from vigil.server.db.accounts import StandingRepository, UserRepository, UserRow
from vigil.server.db.contacts import BlockRepository, ContactRepository
from vigil.server.db.messaging import MessageRow
from vigil.server.services import enforcement
from vigil.server.settings import Settings

T0 = 1_800_000_000_000


@pytest.fixture
async def ctx(tmp_path: Path) -> AsyncIterator[ServerContext]:
    async with ServerContext.open(Settings(data_dir=tmp_path)) as ctx:
        yield ctx


async def _user(ctx: ServerContext, name: str, band: AgeBand = AgeBand.ADULT) -> UserRow:
    async with ctx.sessions() as session, session.begin():
        return await UserRepository(session).add(
            UserRow(username=name, age_band=band.value, created_at_ms=T0)
        )


async def _check_send(ctx: ServerContext, sender: UserRow, recipient: UserRow) -> None:
    async with ctx.sessions() as session:
        await enforcement.check_send(session, sender.id, UserId(sender.username), recipient)


async def _set(ctx: ServerContext, user: UserRow, standing: Standing) -> None:
    async with ctx.sessions() as session, session.begin():
        await StandingRepository(session).set(user.id, standing.value, T0)


async def test_an_adult_needs_a_connection_to_message_a_minor(ctx: ServerContext) -> None:
    adult, teen = await _user(ctx, "adult"), await _user(ctx, "teen", AgeBand.TEEN_13_15)
    with pytest.raises(PolicyViolation) as refused:
        await _check_send(ctx, adult, teen)
    assert refused.value.detail == NEUTRAL_REFUSAL
    async with ctx.sessions() as session, session.begin():
        ContactRepository(session).connect(teen.id, adult.id, T0)
    await _check_send(ctx, adult, teen)
    assert await _standing(ctx, adult) is Standing.ACTIVE


async def _standing(ctx: ServerContext, user: UserRow) -> Standing:
    async with ctx.sessions() as session:
        return await enforcement.standing_of(session, user.id)


async def test_a_block_refuses_sends_and_group_adds(ctx: ServerContext) -> None:
    alice, bob = await _user(ctx, "alice"), await _user(ctx, "bob")
    async with ctx.sessions() as session, session.begin():
        await BlockRepository(session).add(bob.id, alice.id, T0)
    with pytest.raises(PolicyViolation) as refused:
        await _check_send(ctx, alice, bob)
    assert refused.value.detail == NEUTRAL_REFUSAL
    await _check_send(ctx, bob, alice)  # a block is one-way
    async with ctx.sessions() as session:
        with pytest.raises(PolicyViolation) as refused:
            await enforcement.check_group_add(session, alice.id, AgeBand.ADULT, bob, [alice])
        assert refused.value.detail == NEUTRAL_REFUSAL
        await enforcement.check_group_add(session, bob.id, AgeBand.ADULT, alice, [bob])


async def test_a_restricted_account_may_only_continue_its_conversations(ctx: ServerContext) -> None:
    alice, bob, carol = await _user(ctx, "alice"), await _user(ctx, "bob"), await _user(ctx, "carol")
    async with ctx.sessions() as session, session.begin():
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
    await _set(ctx, alice, Standing.RESTRICTED)
    assert await _standing(ctx, alice) is Standing.RESTRICTED
    await _check_send(ctx, alice, bob)  # bob wrote to alice before
    with pytest.raises(PolicyViolation) as refused:
        await _check_send(ctx, alice, carol)
    assert refused.value.detail == NEUTRAL_REFUSAL


async def test_a_suspended_account_cannot_sign_in_or_send_but_may_write_to_itself(ctx: ServerContext) -> None:
    alice, bob = await _user(ctx, "alice"), await _user(ctx, "bob")
    await _set(ctx, alice, Standing.SUSPENDED)
    async with ctx.sessions() as session:
        with pytest.raises(PolicyViolation, match="suspended"):
            await enforcement.check_login(session, alice.id)
        await enforcement.check_login(session, bob.id)
    with pytest.raises(PolicyViolation, match="suspended"):
        await _check_send(ctx, alice, bob)
    await _check_send(ctx, alice, alice)


async def test_group_adds_of_minors(ctx: ServerContext) -> None:
    adult, teen, other_teen = (
        await _user(ctx, "adult"),
        await _user(ctx, "teen", AgeBand.TEEN_13_15),
        await _user(ctx, "other", AgeBand.TEEN_16_17),
    )
    async with ctx.sessions() as session:
        with pytest.raises(PolicyViolation) as refused:
            await enforcement.check_group_add(session, adult.id, AgeBand.ADULT, teen, [adult])
        assert refused.value.detail == NEUTRAL_REFUSAL
        await enforcement.check_group_add(session, other_teen.id, AgeBand.TEEN_16_17, teen, [other_teen])
        # A minor adding an adult they are not connected to is refused too: the group would hold both.
        with pytest.raises(PolicyViolation):
            await enforcement.check_group_add(session, teen.id, AgeBand.TEEN_13_15, adult, [teen])
    async with ctx.sessions() as session, session.begin():
        ContactRepository(session).connect(adult.id, teen.id, T0)
    async with ctx.sessions() as session:
        await enforcement.check_group_add(session, adult.id, AgeBand.ADULT, teen, [adult])
        await enforcement.check_group_add(session, teen.id, AgeBand.TEEN_13_15, adult, [teen])
        # An adult joining a group checks every minor already in it.
        with pytest.raises(PolicyViolation):
            await enforcement.check_group_add(session, teen.id, AgeBand.TEEN_13_15, adult, [teen, other_teen])
    await _set(ctx, adult, Standing.RESTRICTED)
    async with ctx.sessions() as session:
        with pytest.raises(PolicyViolation) as refused:
            await enforcement.check_group_add(session, adult.id, AgeBand.ADULT, teen, [adult])
        assert refused.value.detail == NEUTRAL_REFUSAL

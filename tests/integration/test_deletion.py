"""Device and account deletion through a real server: a user deletes a device or the account; what an
open case needs is kept, a preservation hold keeps only its sealed copy in the case, the rest goes, and
the answer says which."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
from helpers import PASSPHRASE, register
from live_server import ServerProcess
from PIL import Image
from safety_helpers import server_context
from sqlalchemy import func, or_, select

from vigil.client.client import Client
from vigil.errors import AuthenticationError, ConflictError, NotFoundError
from vigil.protocol.reports import ReportReason
from vigil.server.db.accounts import DeviceRow, UserRow
from vigil.server.db.base import Base
from vigil.server.db.cases import CaseRow
from vigil.server.db.contacts import BlockRow, ConnectionRow, ContactRequestRow
from vigil.server.db.groups import GroupMemberRow
from vigil.server.db.hashlists import ProfilePhotoRow
from vigil.server.db.messaging import MessageRow
from vigil.server.db.metadata import MetadataEventRow
from vigil.server.services import metadata
from vigil.server.services.preservation import (
    place_hold,
    preserved_copies,
    release_hold,  # noqa: F401  (documents the way out of a hold)
)


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (30, 140, 90)).save(out, format="PNG")
    return out.getvalue()


async def _social_life(me: Client, friend: Client, other: Client) -> None:
    """Connections, a block, a group, messages both ways, a profile photo and a pending request."""
    await friend.accept_request((await me.request_contact(friend.username)).id)
    await me.request_contact(other.username)  # left pending
    await me.block(other.username)
    await me.send_text(friend.username, "hi")
    await friend.send_text(me.username, "hello back")
    await me.groups.create([friend.username])
    async with httpx.AsyncClient(base_url=me.transport.server_url) as http:
        put = await http.put(
            "/v1/profile/photo",
            content=_png(),
            headers={**me.transport._headers(), "Content-Type": "image/png"},
        )
        assert put.status_code == 204


async def _count(ctx, model: type[Base], *where) -> int:  # type: ignore[no-untyped-def]
    async with ctx.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_a_device_is_deleted_but_never_the_only_one(server: ServerProcess, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    laptop = await alice.link_device(tmp_path / "alice-laptop.db", PASSPHRASE)
    await bob.send_text(alice.username, "to both devices")
    with pytest.raises(NotFoundError):
        await bob.delete_device(laptop.device_id)  # not bob's
    report = await alice.delete_device(laptop.device_id)
    assert any("1 undelivered" in line for line in report.deleted) and report.kept == []
    with pytest.raises(AuthenticationError):
        await laptop.fetch()
    with pytest.raises(ConflictError):
        await alice.delete_device(alice.device_id)
    assert [e.text for e in await alice.fetch()] == ["to both devices"]  # type: ignore[union-attr]
    async with httpx.AsyncClient(base_url=server.url) as http:
        bad = await http.delete("/v1/devices/not-a-device", headers=alice.transport._headers())
        assert bad.status_code == 422 and set(bad.json()) == {"error", "detail"}
        anonymous = await http.delete("/v1/accounts/me")
        assert anonymous.status_code == 401 and "error" in anonymous.json()
    for client in (alice, bob, laptop):
        await client.close()


async def test_deleting_an_account_with_no_case_or_hold_leaves_no_trace_of_its_name(
    server: ServerProcess, tmp_path: Path
) -> None:
    alice = await register(server.url, tmp_path, "alice")
    friend = await register(server.url, tmp_path, "friend")
    other = await register(server.url, tmp_path, "other")
    await _social_life(alice, friend, other)
    [event] = await friend.fetch()
    await alice.report_account(other.username, ReportReason.SPAM)  # a report about someone else
    async with server_context(server.data_dir, server.database_url) as ctx:
        async with ctx.sessions() as session:
            alice_id = await session.scalar(select(UserRow.id).where(UserRow.username == alice.username))
        assert alice_id is not None
        alias = metadata.pseudonym_of(ctx, alice_id)  # how the metadata log names alice
        alice_events = or_(MetadataEventRow.actor == alias, MetadataEventRow.target == alias)
        assert await _count(ctx, MetadataEventRow, alice_events) >= 3
    name = alice.username

    report = await alice.delete_account()
    assert "the username" in report.deleted
    assert [k.what for k in report.kept] == ["1 reports this account made about others"]
    with pytest.raises(AuthenticationError):
        await alice.fetch()
    async with server_context(server.data_dir, server.database_url) as ctx:
        assert await _count(ctx, UserRow, UserRow.username == name) == 0
        assert await _count(ctx, DeviceRow, DeviceRow.user_id == alice_id) == 0
        assert await _count(ctx, ProfilePhotoRow, ProfilePhotoRow.user_id == alice_id) == 0
        assert await _count(ctx, GroupMemberRow, GroupMemberRow.user_id == alice_id) == 0
        assert (
            await _count(
                ctx,
                ConnectionRow,
                or_(ConnectionRow.low_user_id == alice_id, ConnectionRow.high_user_id == alice_id),
            )
            == 0
        )
        assert await _count(ctx, BlockRow, BlockRow.blocker_user_id == alice_id) == 0
        assert (
            await _count(
                ctx,
                ContactRequestRow,
                or_(
                    ContactRequestRow.requester_user_id == alice_id,
                    ContactRequestRow.recipient_user_id == alice_id,
                ),
            )
            == 0
        )
        assert await _count(ctx, MetadataEventRow, alice_events) == 0
        assert (
            await _count(
                ctx, MessageRow, or_(MessageRow.sender_user_id == alice_id, MessageRow.conversation == name)
            )
            == 0
        )
    # the others carry on: the group alice created passed to the friend, who still receives
    assert len((await friend.groups.list_groups()).groups) == 1
    assert event is not None
    for client in (friend, other):
        await client.close()


async def test_deleting_an_account_under_a_hold_keeps_only_the_held_data(
    server: ServerProcess, tmp_path: Path
) -> None:
    suspect = await register(server.url, tmp_path, "suspect")
    friend = await register(server.url, tmp_path, "friend")
    other = await register(server.url, tmp_path, "other")
    await _social_life(suspect, friend, other)
    accepted = await other.report_account(suspect.username, ReportReason.GROOMING)
    async with server_context(server.data_dir, server.database_url) as ctx:
        async with ctx.sessions() as session, session.begin():
            suspect_id = await session.scalar(select(UserRow.id).where(UserRow.username == suspect.username))
            assert suspect_id is not None
            case = await session.get(CaseRow, accepted.case_id)
            assert case is not None
            case.state = "closed"  # the hold alone must keep the data, not the open case
            await place_hold(
                ctx,
                session,
                case_id=accepted.case_id,
                subject_user_id=suspect_id,
                filing_id=None,
                reason="CyberTipline report",
                blob_ids=frozenset(),
                actor="admin:test",
                now_ms=ctx.clock_ms(),
            )
        suspect_events = MetadataEventRow.actor == metadata.pseudonym_of(ctx, suspect_id)
        events_before = await _count(ctx, MetadataEventRow, suspect_events)
        assert events_before >= 3

    report = await suspect.delete_account()
    [held] = [k for k in report.kept if "preservation hold" in k.why]
    assert "sealed copy" in held.what and "releases the hold" in held.until
    assert "the username" in report.deleted  # the hold keeps its copy, not the account's own records
    async with server_context(server.data_dir, server.database_url) as ctx:
        # kept: only the held data, the sealed copy in the case
        (copy,) = await preserved_copies(ctx, accepted.case_id)
        assert copy["subject"]["username"] == suspect.username
        alias = metadata.pseudonym_of(ctx, suspect_id)
        assert sum(e["actor"] == alias for e in copy["tables"]["metadata_events"]) == events_before
        assert any(m["sender_user_id"] == suspect_id for m in copy["tables"]["messages"])
        # gone: the originals, and everything else
        assert await _count(ctx, UserRow, UserRow.username == suspect.username) == 0
        assert await _count(ctx, MetadataEventRow, suspect_events) == 0
        assert await _count(ctx, MessageRow, MessageRow.sender_user_id == suspect_id) == 0
        assert await _count(ctx, DeviceRow, DeviceRow.user_id == suspect_id) == 0
        assert await _count(ctx, ProfilePhotoRow, ProfilePhotoRow.user_id == suspect_id) == 0
        assert await _count(ctx, GroupMemberRow, GroupMemberRow.user_id == suspect_id) == 0
        assert (
            await _count(
                ctx,
                ConnectionRow,
                or_(ConnectionRow.low_user_id == suspect_id, ConnectionRow.high_user_id == suspect_id),
            )
            == 0
        )
        assert await _count(ctx, BlockRow, BlockRow.blocker_user_id == suspect_id) == 0
        assert (
            await _count(
                ctx,
                ContactRequestRow,
                ContactRequestRow.state == "pending",
                ContactRequestRow.requester_user_id == suspect_id,
            )
            == 0
        )
    with pytest.raises(AuthenticationError):
        await suspect.fetch()
    for client in (friend, other):
        await client.close()

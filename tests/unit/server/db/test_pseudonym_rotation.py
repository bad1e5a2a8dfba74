"""VIGIL_METADATA_PSEUDONYM_KEY (issue 16): the metadata log's pseudonym key is configurable apart from the
report key (derived from it by default) and rotatable. A rotation renames the log's accounts at start-up,
from the configured previous key and from the derived one, so scoring keeps one name per account across
it; a second start-up changes nothing."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from pydantic import SecretStr
from pydantic import ValidationError as SettingsError
from sqlalchemy import select

from vigil.server.context import ServerContext
from vigil.server.db.accounts import UserRow
from vigil.server.db.metadata import MetadataEventRow, MetadataRepository
from vigil.server.db.pseudonyms import derive_pseudonym_key, pseudonym
from vigil.server.services import metadata
from vigil.server.settings import Settings

REPORT_KEY = bytes(range(32))
FIRST = bytes(range(1, 33))
SECOND = bytes(range(2, 34))


def _settings(tmp_path: Path, key: bytes | None = None, previous: bytes | None = None) -> Settings:
    return Settings(
        data_dir=tmp_path,
        report_key=SecretStr(REPORT_KEY.hex()),
        metadata_pseudonym_key=None if key is None else SecretStr(key.hex()),
        metadata_pseudonym_previous_key=None if previous is None else SecretStr(previous.hex()),
    )


async def _names(ctx: ServerContext) -> list[tuple[str, str | None]]:
    async with ctx.sessions() as session:
        rows = await session.scalars(select(MetadataEventRow).order_by(MetadataEventRow.id))
        return [(r.actor, r.target) for r in rows]


async def test_the_key_defaults_to_the_derived_one_then_rotates_without_splitting_an_account(
    tmp_path: Path,
) -> None:
    async with ServerContext.open(_settings(tmp_path)) as ctx:
        assert ctx.pseudonym_key == derive_pseudonym_key(REPORT_KEY)  # nothing breaks by default
        async with ctx.sessions() as session, session.begin():
            users = [UserRow(username=n, age_band="adult", created_at_ms=1) for n in ("alice", "bob")]
            session.add_all(users)
            await session.flush()
            alice, bob = users[0].id, users[1].id
            session.add(
                MetadataEventRow(at_ms=1, kind="msg", actor=metadata.pseudonym_of(ctx, alice), target=None)
            )
            session.add(
                MetadataEventRow(
                    at_ms=2,
                    kind="msg",
                    actor=metadata.pseudonym_of(ctx, bob),
                    target=metadata.pseudonym_of(ctx, alice),
                )
            )

    # From the derived key to a configured one: no previous key needed, the derived one is a candidate.
    async with ServerContext.open(_settings(tmp_path, FIRST)) as ctx:
        assert ctx.pseudonym_key == FIRST
        assert metadata.pseudonym_of(ctx, alice) == pseudonym(FIRST, alice)
        assert await _names(ctx) == [
            (pseudonym(FIRST, alice), None),
            (pseudonym(FIRST, bob), pseudonym(FIRST, alice)),
        ]
        async with ctx.sessions() as session, session.begin():  # written under the first key
            session.add(MetadataEventRow(at_ms=3, kind="block", actor=pseudonym(FIRST, alice), target=None))

    # From one configured key to the next, with the previous one kept for the start-up rename.
    async with ServerContext.open(_settings(tmp_path, SECOND, previous=FIRST)) as ctx:
        names = await _names(ctx)
        assert names == [
            (pseudonym(SECOND, alice), None),
            (pseudonym(SECOND, bob), pseudonym(SECOND, alice)),
            (pseudonym(SECOND, alice), None),
        ]
        # Scoring sees one account across the rotation: every event of alice's under one name.
        async with ctx.sessions() as session:
            latest = await MetadataRepository(session).latest_involving(metadata.pseudonym_of(ctx, alice), 10)
        assert len(latest) == 3
        async with ctx.sessions() as session, session.begin():  # a second start-up renames nothing
            assert await MetadataRepository(session).rename_pseudonyms([FIRST], SECOND) == 0


def test_a_pseudonym_key_must_be_32_hex_bytes(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="VIGIL_METADATA_PSEUDONYM_KEY must be hex"):
        Settings(data_dir=tmp_path, metadata_pseudonym_key=SecretStr("not hex"))
    with pytest.raises(SettingsError, match="VIGIL_METADATA_PSEUDONYM_PREVIOUS_KEY must be 32 bytes"):
        Settings(data_dir=tmp_path, metadata_pseudonym_previous_key=SecretStr("ab" * 16))
    assert _settings(tmp_path, FIRST, previous=FIRST).previous_pseudonym_keys() == [
        derive_pseudonym_key(REPORT_KEY)
    ]  # never the current key


async def test_a_start_up_with_nothing_to_rotate_does_not_scan_the_log_and_a_key_change_still_renames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The log records the fingerprint of the key it was last renamed to: a start-up under that key
    computes no pseudonym at all, even with the previous key still configured; a process started under
    another key with no previous one cannot rename and marks the log unsettled, so the next start-up given
    that key as a previous one renames what that process wrote; a later rotation renames everything again."""
    async with ServerContext.open(_settings(tmp_path, FIRST)) as ctx:
        async with ctx.sessions() as session, session.begin():
            users = [UserRow(username=f"u{i}", age_band="adult", created_at_ms=1) for i in range(50)]
            session.add_all(users)
            await session.flush()
            ids = [u.id for u in users]
            session.add_all(
                MetadataEventRow(at_ms=i, kind="msg", actor=pseudonym(FIRST, a), target=pseudonym(FIRST, b))
                for i, (a, b) in enumerate(itertools.pairwise(ids))
            )
    async with ServerContext.open(_settings(tmp_path, SECOND, previous=FIRST)) as ctx:
        assert {a for a, _ in await _names(ctx)} == {pseudonym(SECOND, a) for a in ids[:-1]}

    from vigil.server.db import metadata as metadata_db

    computed: list[int] = []

    def counting_pseudonym(key: bytes, user_id: int) -> str:
        computed.append(user_id)
        return pseudonym(key, user_id)

    monkeypatch.setattr(metadata_db, "pseudonym", counting_pseudonym)
    async with ServerContext.open(_settings(tmp_path, SECOND, previous=FIRST)) as ctx:
        assert computed == []  # nothing to rotate: no pseudonym computed, the log not scanned
        names = await _names(ctx)

    # A process still on the default (derived) key, with no previous key, writes under it: it cannot
    # rename, says so, and marks the log unsettled.
    async with ServerContext.open(_settings(tmp_path)) as ctx:
        assert "VIGIL_METADATA_PSEUDONYM_PREVIOUS_KEY" in caplog.text
        async with ctx.sessions() as session, session.begin():
            session.add(
                MetadataEventRow(
                    at_ms=99, kind="block", actor=metadata.pseudonym_of(ctx, ids[0]), target=None
                )
            )
    async with ServerContext.open(_settings(tmp_path, SECOND, previous=FIRST)) as ctx:
        assert await _names(ctx) == [*names, (pseudonym(SECOND, ids[0]), None)]

    # The next rotation renames the whole log again.
    third = bytes(range(3, 35))
    async with ServerContext.open(_settings(tmp_path, third, previous=SECOND)) as ctx:
        assert {a for a, _ in await _names(ctx)} == {pseudonym(third, a) for a in ids[:-1]}

"""The metadata log names accounts by pseudonym (issue 16): a keyed HMAC of the account id, stable for
one key, different under another; migration 0018 rewrites existing rows and refuses to guess without
the key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from vigil.server.db.engine import alembic_config, create_engine
from vigil.server.db.pseudonyms import PSEUDONYM_CHARS, derive_pseudonym_key, pseudonym

KEY = derive_pseudonym_key(bytes(range(32)))


def test_a_pseudonym_is_keyed_stable_and_fits_the_log_columns() -> None:
    assert pseudonym(KEY, 7) == pseudonym(KEY, 7) != pseudonym(KEY, 8)
    assert pseudonym(derive_pseudonym_key(bytes(32)), 7) != pseudonym(KEY, 7)
    assert KEY != bytes(range(32))  # derived under its own label, not the report key itself
    assert len(pseudonym(KEY, 7)) == PSEUDONYM_CHARS == 32


def _to(revision: str, key: bytes | None) -> Callable[[Connection], None]:
    def run(connection: Connection) -> None:
        command.upgrade(alembic_config(connection, pseudonym_key=key), revision)

    return run


async def _old_log(path: Path) -> AsyncEngine:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as connection:
        await connection.run_sync(_to("0017_appeals", None))
        await connection.execute(
            text(
                "INSERT INTO users (id, username, age_band, created_at_ms) VALUES "
                "(1, 'canary_alice_q7', 'adult', 1), (2, 'canary_bob_q7', '13_15', 1)"
            )
        )
        await connection.execute(
            text(
                "INSERT INTO metadata_events (at_ms, kind, actor, target) VALUES "
                "(1, 'msg', 'canary_alice_q7', 'canary_bob_q7'), (2, 'block', 'canary_bob_q7', NULL)"
            )
        )
    return engine


async def test_the_migration_replaces_usernames_by_pseudonyms(tmp_path: Path) -> None:
    engine = await _old_log(tmp_path / "old.db")
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_to("heads", KEY))
            rows = (
                await connection.execute(text("SELECT actor, target FROM metadata_events ORDER BY at_ms"))
            ).all()
    finally:
        await engine.dispose()
    assert [tuple(r) for r in rows] == [(pseudonym(KEY, 1), pseudonym(KEY, 2)), (pseudonym(KEY, 2), None)]


async def test_the_migration_refuses_a_non_empty_log_without_the_key(tmp_path: Path) -> None:
    engine = await _old_log(tmp_path / "old.db")
    try:
        with pytest.raises(RuntimeError, match="needs the server's keys"):
            async with engine.begin() as connection:
                await connection.run_sync(_to("heads", None))
    finally:
        await engine.dispose()

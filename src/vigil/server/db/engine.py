"""Engine creation and migrations. SQLite runs in WAL mode with full fsync so an accepted message
survives a crash; PostgreSQL needs nothing special."""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, exc
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

__all__ = ["create_engine", "migrate", "one_statement_engine", "session_factory"]

_MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _drop_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Replaces a pooled connection the server has closed (e.g. a PostgreSQL restart) at checkout. asyncpg
    notices a closed socket by itself, so this costs no round trip, unlike `pool_pre_ping` (which costs
    three per checkout on asyncpg: BEGIN, a ping and ROLLBACK)."""
    inner = getattr(dbapi_connection, "_connection", None)
    if inner is not None and inner.is_closed():
        raise exc.DisconnectionError("connection closed by the server")


def create_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # At most 30 connections as before, but all of them kept once opened: with 10 kept and 20 overflow, a
    # burst of concurrent requests opened and closed connections (and re-prepared statements) all the time.
    engine = create_async_engine(url, pool_size=30, max_overflow=0)
    event.listen(engine.sync_engine, "checkout", _drop_closed)
    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


_one_statement: weakref.WeakKeyDictionary[object, AsyncEngine] = weakref.WeakKeyDictionary()


def one_statement_engine(engine: AsyncEngine) -> AsyncEngine:
    """For a transaction that is one statement (atomic by itself): on PostgreSQL the same pool in
    autocommit, which saves the BEGIN and COMMIT round trips (two of the ack batch's three); SQLite's
    driver begins implicitly at no cost, so there it is `engine` itself."""
    if engine.dialect.name != "postgresql":
        return engine
    found = _one_statement.get(engine.sync_engine)
    if found is None:
        found = _one_statement[engine.sync_engine] = engine.execution_options(isolation_level="AUTOCOMMIT")
    return found


def alembic_config(connection: Connection | None = None, *, pseudonym_key: bytes | None = None) -> Config:
    """`pseudonym_key` lets a migration that rewrites the metadata log's account names compute their
    pseudonyms (`vigil.server.db.pseudonyms`); without it, such a migration refuses a non-empty log."""
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    if pseudonym_key is not None:
        config.attributes["pseudonym_key"] = pseudonym_key
    return config


async def migrate(engine: AsyncEngine, *, pseudonym_key: bytes | None = None) -> None:
    """Apply every migration up to head (idempotent)."""

    def upgrade(connection: Connection) -> None:
        command.upgrade(alembic_config(connection, pseudonym_key=pseudonym_key), "heads")

    async with engine.begin() as connection:
        await connection.run_sync(upgrade)

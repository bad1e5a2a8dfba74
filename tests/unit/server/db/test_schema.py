"""The row models and the Alembic migrations describe the same schema: after migrating an empty
database to head, an autogenerate comparison against the models finds no table, column, index or
constraint to add, drop or alter. On SQLite and (when reachable) PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from live_server import create_postgres_database, drop_postgres_database, require_backend
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from vigil.server.db.engine import create_engine, migrate
from vigil.server.db.schema import metadata


@pytest.fixture(params=["sqlite", "postgres"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    require_backend(request.param)
    database = None
    url = f"sqlite+aiosqlite:///{tmp_path / 'schema.db'}"
    if request.param == "postgres":
        database, url = create_postgres_database()
    engine = create_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()
        if database is not None:
            drop_postgres_database(database)


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def test_the_migrated_schema_is_the_models_schema(engine: AsyncEngine) -> None:
    await migrate(engine)
    async with engine.connect() as connection:
        differences = await connection.run_sync(_differences)
    assert differences == []

"""One process scores at a time: every worker of every node runs the risk loop, and the scoring lease
picks one; another takes the job over (from the window) once the holder stops renewing."""

from __future__ import annotations

from pathlib import Path

import pytest
from live_server import create_postgres_database, drop_postgres_database, require_backend
from sqlalchemy import insert

from vigil.protocol.wire import MessageKind
from vigil.server.context import ServerContext
from vigil.server.db.accounts import UserRow
from vigil.server.services import metadata
from vigil.server.services.risk import risk_round
from vigil.server.settings import Settings

T0 = 1_800_000_000_000
HOUR_MS = 3_600_000


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_one_process_scores_and_another_takes_over_a_lapsed_lease(backend: str, tmp_path: Path) -> None:
    require_backend(backend)
    database, url = None, f"sqlite+aiosqlite:///{tmp_path / 'lease.db'}"
    if backend == "postgres":
        database, url = create_postgres_database()
    now = [T0]
    # Two workers of one node: one data directory (the same keys), one database, each its own process state.
    settings = Settings(data_dir=tmp_path / "node", database_url=url, risk_scoring_interval_seconds=3600)
    try:
        async with (
            ServerContext.open(settings, clock_ms=lambda: now[0]) as worker_a,
            ServerContext.open(settings, clock_ms=lambda: now[0]) as worker_b,
        ):
            async with worker_a.sessions() as session, session.begin():
                await session.execute(
                    insert(UserRow),
                    [{"username": n, "age_band": "adult", "created_at_ms": T0 - 100 * HOUR_MS} for n in "ab"],
                )
                message = metadata.message_event(
                    T0 - HOUR_MS, "a", recipient="b", group=None, size_bucket=1, kind=MessageKind.TEXT
                )
                await metadata.record_many(worker_a, session, [message])

            first = await risk_round(worker_a, "worker-a")
            assert first is not None and first.events == 1
            assert await risk_round(worker_b, "worker-b") is None

            now[0] += HOUR_MS  # the next round: the holder renews, reading nothing twice
            renewed = await risk_round(worker_a, "worker-a")
            assert renewed is not None and renewed.events == 0
            now[0] += HOUR_MS + 1000  # the renewed lease (two intervals) still holds
            assert await risk_round(worker_b, "worker-b") is None

            now[0] += 2 * HOUR_MS  # worker a stopped renewing: the lease lapsed
            taken = await risk_round(worker_b, "worker-b")
            assert taken is not None and taken.events == 1  # the new scorer starts from the window
            assert await risk_round(worker_a, "worker-a") is None
            assert worker_a.risk_state is None  # behind the log now: dropped, not resumed
    finally:
        if database is not None:
            drop_postgres_database(database)

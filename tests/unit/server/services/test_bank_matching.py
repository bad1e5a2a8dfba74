"""The server matches against its enabled banks through one cached index: built once per change of the
banks, reused for every lookup, loaded from disk (not rebuilt) by a restarted server; on SQLite and (when
reachable) PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from live_server import create_postgres_database, drop_postgres_database, require_backend

from vigil.safety.hashing.banks import BankKind, Matcher
from vigil.safety.hashing.index import BruteForceIndex
from vigil.safety.hashing.pdq import PdqHash
from vigil.server.context import ServerContext
from vigil.server.hashindex import MatcherSource
from vigil.server.services import hashlist
from vigil.server.settings import Settings

T0 = 1_800_000_000_000


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest) -> AsyncIterator[str | None]:
    require_backend(request.param)
    name, url = (None, None) if request.param == "sqlite" else create_postgres_database()
    try:
        yield url
    finally:
        if name is not None:
            drop_postgres_database(name)


def _csv(rows: np.ndarray) -> str:
    return "".join(f"{row.tobytes().hex()},label\n" for row in rows)


def _flip(row: np.ndarray, bits: int) -> PdqHash:
    unpacked = np.unpackbits(row.copy())
    unpacked[:bits] ^= 1
    return PdqHash(np.packbits(unpacked).tobytes())


async def test_server_matcher_is_cached_rebuilt_on_change_and_loaded_after_restart(
    database: str | None, tmp_path: Path
) -> None:
    rng = np.random.default_rng(3)
    first, later = (
        rng.integers(0, 256, (300, 32), dtype=np.uint8),
        rng.integers(0, 256, (50, 32), dtype=np.uint8),
    )
    settings = Settings(data_dir=tmp_path, database_url=database)
    query = [
        _flip(first[5], 20),
        _flip(later[7], 25),
        PdqHash(rng.integers(0, 256, 32, dtype=np.uint8).tobytes()),
    ]
    async with ServerContext.open(settings, clock_ms=lambda: T0) as ctx:
        await hashlist.create_bank(ctx, "known")
        await hashlist.create_bank(ctx, "benign", kind=BankKind.NEGATIVE)
        await hashlist.import_entries(ctx, "known", _csv(first), "csv")
        matcher = await hashlist.bank_matcher(ctx)
        assert ctx.bank_matchers.last_source is MatcherSource.BUILT
        assert await hashlist.bank_matcher(ctx) is matcher  # no change, no rebuild
        assert [m.entry.id for m in matcher.match_hashes(query).matches] == [first[5].tobytes().hex()]

        await hashlist.import_entries(ctx, "known", _csv(later), "csv")
        grown = await hashlist.bank_matcher(ctx)
        assert grown is not matcher and ctx.bank_matchers.last_source is MatcherSource.BUILT
        banks = await hashlist.enabled_banks(ctx)
        assert grown.match_hashes(query) == Matcher(banks, index_factory=BruteForceIndex).match_hashes(query)
        assert len(grown.match_hashes(query).matches) == 2

        await hashlist.import_entries(ctx, "known", _csv(first[:10]), "csv")  # nothing new: same index
        assert await hashlist.bank_matcher(ctx) is grown

    async with ServerContext.open(settings, clock_ms=lambda: T0) as ctx:
        restarted = await hashlist.bank_matcher(ctx)
        assert ctx.bank_matchers.last_source is MatcherSource.LOADED
        assert restarted.match_hashes(query) == grown.match_hashes(query)

        await hashlist.import_entries(ctx, "benign", _csv(later[7:8]), "csv")
        suppressed = (await hashlist.bank_matcher(ctx)).match_hashes(query)
        assert ctx.bank_matchers.last_source is MatcherSource.BUILT
        assert [m.entry.id for m in suppressed.suppressed_by] == [later[7].tobytes().hex()]
        assert not suppressed.is_match

        await hashlist.set_bank_enabled(ctx, "benign", False)
        await hashlist.set_bank_enabled(ctx, "known", False)
        assert not (await hashlist.bank_matcher(ctx)).match_hashes(query).suppressed_by
        assert not (await hashlist.bank_matcher(ctx)).match_hashes(query).is_match
        await hashlist.set_bank_enabled(ctx, "known", True)
        assert len((await hashlist.bank_matcher(ctx)).match_hashes(query).matches) == 2

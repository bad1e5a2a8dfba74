"""The server keeps no adult's birth date and moves minors' bands on by date: a 17-year-old is an
adult on their 18th birthday (at authentication at once, in the stored row by the age-band job), and
the migration turns existing rows' `adult_on` into the band's change date."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from alembic import command
from sqlalchemy import Connection, select, text

from vigil.protocol.olm import DeviceAccount
from vigil.protocol.wire import AgeBand, RegisterAccountRequest
from vigil.server.context import ServerContext
from vigil.server.db.accounts import UserRow
from vigil.server.db.engine import alembic_config, create_engine
from vigil.server.services import accounts
from vigil.server.settings import Settings

DAY = 24 * 3600 * 1000


def _ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC).timestamp() * 1000)


class Clock:
    def __init__(self, day: dt.date) -> None:
        self.now_ms = _ms(day)

    def __call__(self) -> int:
        return self.now_ms


async def _stored(ctx: ServerContext, username: str) -> tuple[str, str | None]:
    async with ctx.sessions() as session:
        row = await session.scalar(select(UserRow).where(UserRow.username == username))
        assert row is not None
        return row.age_band, row.band_changes_on


async def test_a_17_year_old_becomes_an_adult_on_their_birthday(tmp_path: Path) -> None:
    clock = Clock(dt.date(2026, 11, 29))
    async with ServerContext.open(Settings(data_dir=tmp_path), clock_ms=clock) as ctx:
        teen = await accounts.register_account(
            ctx,
            RegisterAccountRequest(
                username="teen", birth_date=dt.date(2008, 11, 30), device=DeviceAccount().device_keys()
            ),
        )
        adult = await accounts.register_account(
            ctx,
            RegisterAccountRequest(
                username="grown", birth_date=dt.date(1984, 6, 2), device=DeviceAccount().device_keys()
            ),
        )
        assert await _stored(ctx, "grown") == ("adult", None)  # no birth date, not even as a band date
        assert await _stored(ctx, "teen") == ("16_17", "2026-11-30")
        assert (await accounts.authenticate(ctx, teen.credential)).age_band is AgeBand.TEEN_16_17
        assert await accounts.move_age_bands(ctx, clock.now_ms) == 0

        clock.now_ms += DAY  # the 18th birthday
        assert (await accounts.authenticate(ctx, teen.credential)).age_band is AgeBand.ADULT
        assert await accounts.move_age_bands(ctx, clock.now_ms) == 1
        assert await _stored(ctx, "teen") == ("adult", None)
        assert (await accounts.authenticate(ctx, adult.credential)).age_band is AgeBand.ADULT
        assert await accounts.move_age_bands(ctx, clock.now_ms) == 0


async def test_the_migration_drops_adults_birth_dates(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")

    def to(revision: str) -> object:
        def run(connection: Connection) -> None:
            command.upgrade(alembic_config(connection), revision)

        return run

    try:
        async with engine.begin() as connection:
            await connection.run_sync(to("0006_group_membership_periods"))
            await connection.execute(
                text(
                    "INSERT INTO users (username, age_band, adult_on, created_at_ms) VALUES "
                    "('adult', 'adult', '1990-04-01', 1), ('older', '16_17', '2027-05-06', 1), "
                    "('younger', '13_15', '2029-02-28', 1)"
                )
            )
        async with engine.begin() as connection:
            await connection.run_sync(to("heads"))
            rows = (
                await connection.execute(text("SELECT username, age_band, band_changes_on FROM users"))
            ).all()
            columns = (
                await connection.execute(text("SELECT name FROM pragma_table_info('users')"))
            ).scalars()
            assert "adult_on" not in set(columns)
    finally:
        await engine.dispose()
    assert sorted(tuple(r) for r in rows) == [
        ("adult", "adult", None),
        ("older", "16_17", "2027-05-06"),
        ("younger", "13_15", "2027-02-28"),
    ]

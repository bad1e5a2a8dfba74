"""Age bands move on by date, from the band and its change date alone (no birth date kept)."""

from __future__ import annotations

import datetime as dt

from vigil.protocol.wire import AgeBand
from vigil.safety.age import advance, band_and_next_change, birthday

TODAY = dt.date(2026, 11, 29)


def test_a_17_year_old_becomes_an_adult_on_their_birthday() -> None:
    born = dt.date(2008, 11, 30)  # 18 tomorrow
    band, changes_on = band_and_next_change(born, TODAY)
    assert (band, changes_on) == (AgeBand.TEEN_16_17, dt.date(2026, 11, 30))
    assert advance(band, changes_on, TODAY) == (AgeBand.TEEN_16_17, dt.date(2026, 11, 30))
    assert advance(band, changes_on, dt.date(2026, 11, 30)) == (AgeBand.ADULT, None)


def test_a_15_year_old_turns_16_then_adult() -> None:
    band, changes_on = band_and_next_change(dt.date(2011, 3, 10), TODAY)
    assert (band, changes_on) == (AgeBand.TEEN_13_15, dt.date(2027, 3, 10))
    assert advance(band, changes_on, dt.date(2027, 3, 9)) == (AgeBand.TEEN_13_15, dt.date(2027, 3, 10))
    assert advance(band, changes_on, dt.date(2027, 3, 10)) == (AgeBand.TEEN_16_17, dt.date(2029, 3, 10))
    # a job that did not run for years still lands on the right band
    assert advance(band, changes_on, dt.date(2030, 1, 1)) == (AgeBand.ADULT, None)


def test_an_adult_keeps_no_date() -> None:
    assert band_and_next_change(dt.date(1990, 5, 17), TODAY) == (AgeBand.ADULT, None)
    assert advance(AgeBand.ADULT, None, TODAY) == (AgeBand.ADULT, None)


def test_born_on_29_february() -> None:
    assert birthday(dt.date(2008, 2, 29), 16) == dt.date(2024, 2, 29)
    assert birthday(dt.date(2008, 2, 29), 18) == dt.date(2026, 3, 1)
    band, changes_on = band_and_next_change(dt.date(2008, 2, 29), dt.date(2025, 6, 1))
    assert (band, changes_on) == (AgeBand.TEEN_16_17, dt.date(2026, 3, 1))
    assert advance(AgeBand.TEEN_13_15, dt.date(2024, 2, 29), dt.date(2026, 2, 28)) == (
        AgeBand.TEEN_16_17,
        dt.date(2026, 3, 1),
    )

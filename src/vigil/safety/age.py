"""Age bands without birth dates: an account keeps its band and the day that band next changes (a
minor's 16th or 18th birthday; nothing for an adult), so the server never holds an adult's birth date
and a minor's band moves on on the right day (`advance`, run by the server's age-band job).

Pure: today comes in as an argument."""

from __future__ import annotations

import datetime as dt

from vigil.protocol.wire import AgeBand

__all__ = ["advance", "band_and_next_change", "birthday"]

_CHANGES_AT: dict[AgeBand, int] = {AgeBand.UNDER_13: 13, AgeBand.TEEN_13_15: 16, AgeBand.TEEN_16_17: 18}
_NEXT: dict[AgeBand, AgeBand] = {
    AgeBand.UNDER_13: AgeBand.TEEN_13_15,
    AgeBand.TEEN_13_15: AgeBand.TEEN_16_17,
    AgeBand.TEEN_16_17: AgeBand.ADULT,
}


def birthday(birth_date: dt.date, years: int) -> dt.date:
    """The day someone born on `birth_date` turns `years` (1 March for 29 February in a common year)."""
    try:
        return birth_date.replace(year=birth_date.year + years)
    except ValueError:
        return dt.date(birth_date.year + years, 3, 1)


def band_and_next_change(birth_date: dt.date, today: dt.date) -> tuple[AgeBand, dt.date | None]:
    """The band on `today` and the day it next changes (None for an adult): all the server keeps."""
    band = AgeBand.from_birth_date(birth_date, today)
    changes_at = _CHANGES_AT.get(band)
    return band, None if changes_at is None else birthday(birth_date, changes_at)


def advance(band: AgeBand, changes_on: dt.date | None, today: dt.date) -> tuple[AgeBand, dt.date | None]:
    """The band and next change date on `today`, from a stored band whose change date may have passed
    (once or more). A band changes on its change date itself: a 17-year-old is an adult on their 18th
    birthday."""
    while changes_on is not None and changes_on <= today:
        years_now = _CHANGES_AT[band]
        band = _NEXT[band]
        following = _CHANGES_AT.get(band)
        changes_on = None if following is None else birthday(changes_on, following - years_now)
    return band, changes_on

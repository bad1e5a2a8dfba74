"""What naming accounts in the metadata log costs at start-up and per case timeline (issue 16's
pseudonyms), against the code they replaced, in one run on one SQLite database:

- timeline: `metadata.timeline` of an account with a few related counterparts, against the replaced way
  (one HMAC per account on the server: `pseudonyms_to_usernames` over every account, then renaming);
- start-up: `settle_pseudonym_key` with a previous key still configured and the log already renamed,
  against the replaced full rename check (`rename_pseudonyms`: the log's distinct names, then an HMAC per
  account and previous key).

Prints JSON: milliseconds per call (median of `--rounds`) and the ratios.

    .venv/bin/python benchmarks/metadata_names.py --accounts 20000 --events 50000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from vigil.server.context import ServerContext
from vigil.server.db.accounts import UserRow
from vigil.server.db.contacts import ContactRequestRow
from vigil.server.db.metadata import MetadataRepository
from vigil.server.db.pseudonyms import pseudonym
from vigil.server.services import metadata
from vigil.server.settings import Settings

T0 = 1_800_000_000_000
PREVIOUS_KEY = bytes(range(1, 33))


async def _median_ms(call: Callable[[], Awaitable[object]], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        await call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


async def run(accounts: int, events: int, rounds: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        async with ServerContext.open(Settings(data_dir=Path(tmp)), clock_ms=lambda: T0) as ctx:
            async with ctx.sessions() as session, session.begin():
                users = [
                    UserRow(username=f"u{i}", age_band="adult", created_at_ms=T0) for i in range(accounts)
                ]
                session.add_all(users)
                await session.flush()
                ids = [u.id for u in users]
                subject, friends = ids[accounts // 2], random.Random(1).sample(ids, 5)
                session.add_all(
                    ContactRequestRow(
                        requester_user_id=subject, recipient_user_id=f, state="accepted", created_at_ms=T0
                    )
                    for f in friends
                    if f != subject
                )
                alias = {i: pseudonym(ctx.pseudonym_key, i) for i in ids}
                rng = random.Random(2)
                rows = []
                for n in range(events):
                    actor, target = rng.choice(ids), rng.choice(ids)
                    if n % 100 == 0:
                        actor, target = subject, rng.choice(friends)
                    rows.append(
                        {
                            "at_ms": T0 + n * 1000,
                            "kind": "msg",
                            "actor": alias[actor],
                            "target": alias[target],
                            "group_id": None,
                            "content": "text",
                            "reason": None,
                        }
                    )
                await MetadataRepository(session).add_values(rows)

            async def timeline_now() -> object:
                async with ctx.sessions() as session:
                    return await metadata.timeline(ctx, session, subject)

            async def timeline_before() -> object:
                async with ctx.sessions() as session:
                    found = await MetadataRepository(session).latest_involving(
                        metadata.pseudonym_of(ctx, subject), 50
                    )
                    names = await metadata.pseudonyms_to_usernames(ctx, session)
                    return [metadata.renamed(metadata.event_of_row(r), names) for r in reversed(found)]

            assert await timeline_now() == await timeline_before()

            async def startup_now() -> object:
                async with ctx.sessions() as session, session.begin():
                    return await MetadataRepository(session).settle_pseudonym_key(
                        [PREVIOUS_KEY], ctx.pseudonym_key
                    )

            async def startup_before() -> object:
                async with ctx.sessions() as session, session.begin():
                    return await MetadataRepository(session).rename_pseudonyms(
                        [PREVIOUS_KEY], ctx.pseudonym_key
                    )

            await startup_now()  # records the key (a first start-up after the upgrade scans once)
            figures = {
                "accounts": accounts,
                "events": events,
                "timeline_ms_before": await _median_ms(timeline_before, rounds),
                "timeline_ms_now": await _median_ms(timeline_now, rounds),
                "startup_check_ms_before": await _median_ms(startup_before, rounds),
                "startup_check_ms_now": await _median_ms(startup_now, rounds),
            }
    figures["timeline_speedup"] = round(figures["timeline_ms_before"] / figures["timeline_ms_now"], 1)  # type: ignore[operator]
    figures["startup_check_speedup"] = round(
        figures["startup_check_ms_before"] / figures["startup_check_ms_now"],
        1,  # type: ignore[operator]
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=20000)
    parser.add_argument("--events", type=int, default=50000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.accounts, args.events, args.rounds)), indent=2))


if __name__ == "__main__":
    main()

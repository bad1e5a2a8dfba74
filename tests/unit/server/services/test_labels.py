"""Account labels: put on from a case, shown until they expire or are removed, audited."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from vigil.errors import NotFoundError, ValidationError
from vigil.protocol.reports import ReportReason
from vigil.server.context import ServerContext
from vigil.server.db.accounts import UserRepository, UserRow
from vigil.server.db.audit import AuditRow
from vigil.server.services import labels
from vigil.server.services.cases import open_or_join_case
from vigil.server.settings import Settings

T0 = 1_800_000_000_000
DAY = 86_400_000


class Clock:
    now = T0

    def __call__(self) -> int:
        return self.now


@pytest.fixture
async def ctx(tmp_path: Path) -> AsyncIterator[ServerContext]:
    async with ServerContext.open(Settings(data_dir=tmp_path), clock_ms=Clock()) as c:
        yield c


async def test_labels_expire_and_are_removed(ctx: ServerContext) -> None:
    async with ctx.sessions() as session, session.begin():
        user = await UserRepository(session).add(UserRow(username="mal", age_band="adult", created_at_ms=T0))
        case_id = (await open_or_join_case(session, user, ReportReason.SPAM, 10, False, T0)).id
        user_id = user.id
    await labels.add_label(ctx, "reviewer:ana", None, case_id, "Repeat-Spammer", 7)
    await labels.add_label(ctx, "reviewer:ana", None, case_id, "watch", None)
    assert [label.label for label in await labels.live_labels(ctx, user_id)] == ["repeat-spammer", "watch"]
    clock = ctx.clock_ms
    assert isinstance(clock, Clock)
    clock.now = T0 + 7 * DAY + 1
    [watch] = await labels.live_labels(ctx, user_id)
    assert watch.label == "watch" and watch.expires_at_ms is None
    await labels.remove_label(ctx, "reviewer:ana", case_id, watch.id)
    assert await labels.live_labels(ctx, user_id) == []
    with pytest.raises(NotFoundError):
        await labels.remove_label(ctx, "reviewer:ana", case_id, watch.id)
    for bad, days in (("x", None), ("no spaces", None), ("ok", 0), ("ok", 9999)):
        with pytest.raises(ValidationError):
            await labels.add_label(ctx, "reviewer:ana", None, case_id, bad, days)
    async with ctx.sessions() as session:
        actions = list(await session.scalars(select(AuditRow.action).order_by(AuditRow.id)))
    assert actions.count("account.labelled") == 2 and actions.count("account.unlabelled") == 1

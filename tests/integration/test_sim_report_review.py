"""A minor's grooming or sextortion report puts the account in front of a reviewer whatever its risk score
(the guarantee the simulator's reviewer models, `detection.minor_report_review_hours`): through the real
server, the report opens a case ranked above ordinary reports even when the risk model sees nothing, and
connections older than the scoring window are history, not new contacts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from helpers import register
from live_server import ServerProcess
from safety_helpers import server_context
from sqlalchemy import update

from vigil.protocol.reports import ReportReason
from vigil.safety.behavior.model import load_default_model
from vigil.server.db.cases import QueueFilter
from vigil.server.db.contacts import ConnectionRow
from vigil.server.services import cases, metadata
from vigil.server.services.risk import WINDOW_DAYS, run_risk_scoring

TODAY = dt.date.today()
TEEN = TODAY.replace(year=TODAY.year - 14)
DAY_MS = 24 * 3600 * 1000


@pytest.mark.fresh_server  # reads the whole queue and scores every account
async def test_a_minors_report_reaches_the_queue_whatever_the_score(
    server: ServerProcess, tmp_path: Path
) -> None:
    adult = await register(server.url, tmp_path, "quietadult")
    teen = await register(server.url, tmp_path, "teenreporter", TEEN)
    other = await register(server.url, tmp_path, "otheradult")
    bystander = await register(server.url, tmp_path, "bystander")
    await teen.accept_request((await adult.request_contact(teen.username)).id)
    await adult.send_text(teen.username, "hi")
    await teen.send_text(adult.username, "hi")
    # An ordinary report between adults, filed first: the minor's report must still rank above it.
    await bystander.report_account(other.username, ReportReason.HARASSMENT, block=False)
    await teen.report_account(adult.username, ReportReason.GROOMING, block=False)

    async with server_context(server.data_dir, server.database_url) as ctx:
        run = await run_risk_scoring(ctx)
        async with ctx.sessions() as session:
            names = await metadata.pseudonyms_to_usernames(ctx, session)
        # The behaviour layer knows accounts by the metadata log's pseudonym, never by username.
        scored = next(p for p, n in names.items() if n == adult.username)
        model = load_default_model()
        score = float(model.score_matrix(run.extractor.feature_matrix([scored], run.now_ms))[0])
        assert score < model.thresholds.restrict_minor_contact  # the model alone would not act
        queue = await cases.queue(ctx, QueueFilter())
        subjects = [c.subject for c in queue]
        assert adult.username in subjects and other.username in subjects
        case = queue[subjects.index(adult.username)]
        assert case.reason == ReportReason.GROOMING.value and case.priority_label in ("urgent", "high")
        assert subjects.index(adult.username) < subjects.index(other.username)

        # Warm-up: the same tie made long before the window is history, not a new conversation.
        assert run.extractor.features(scored, run.now_ms)["new_minor_conversations_per_day"] > 0
        async with ctx.sessions() as session, session.begin():
            await session.execute(update(ConnectionRow).values(created_at_ms=ctx.clock_ms() - 60 * DAY_MS))
        # History rewritten behind the scorer's back: score as a fresh process does (an incremental pass
        # keeps what it already observed of this conversation).
        ctx.risk_state = None
        later = await run_risk_scoring(ctx, now_ms=ctx.clock_ms() + WINDOW_DAYS * DAY_MS - DAY_MS)
        features = later.extractor.features(scored, later.now_ms)
        assert features["new_minor_conversations_per_day"] == 0.0
        assert features["distinct_minors_contacted"] == 1.0
    for client in (adult, teen, other, bystander):
        await client.close()

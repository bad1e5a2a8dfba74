"""Reviewers' action notes and risk timelines are case evidence under per-case keys; the audit log keeps
a reference, never the text, so erasing a case's evidence leaves the hash chain verifying."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from vigil.errors import NotFoundError, StorageError
from vigil.protocol.reports import ReportReason
from vigil.server.context import ServerContext
from vigil.server.db.accounts import UserRepository, UserRow
from vigil.server.db.audit import AuditRow
from vigil.server.db.case_evidence import CaseEvidenceRow, CaseKeyRow
from vigil.server.services.audit import verify_chain
from vigil.server.services.case_evidence import (
    EvidenceKind,
    erase_case_evidence,
    read_case_evidence,
    store_case_evidence,
)
from vigil.server.services.cases import CaseAction, apply_action, case_detail, open_or_join_case
from vigil.server.services.policies import add_policy
from vigil.server.settings import Settings

T0 = 1_800_000_000_000
NOTE = "suspect asked the child to move to another app"


@pytest.fixture
async def ctx(tmp_path: Path) -> AsyncIterator[ServerContext]:
    async with ServerContext.open(Settings(data_dir=tmp_path), clock_ms=lambda: T0) as ctx:
        yield ctx


async def _case(ctx: ServerContext, name: str) -> int:
    async with ctx.sessions() as session, session.begin():
        user = await UserRepository(session).add(UserRow(username=name, age_band="adult", created_at_ms=T0))
        return (await open_or_join_case(session, user, ReportReason.GROOMING, 50, False, T0)).id


async def test_an_action_note_is_evidence_and_the_audit_keeps_only_its_id(ctx: ServerContext) -> None:
    case_id = await _case(ctx, "mallory")
    policy = await add_policy(ctx, "reviewer:rita", "HAR-1", "Harassment")
    await apply_action(ctx, "reviewer:rita", None, case_id, CaseAction.WARN, NOTE, policy_id=policy.id)
    async with ctx.sessions() as session:
        audit = "\n".join(row.details for row in await session.scalars(select(AuditRow)))
        assert NOTE not in audit and "note_evidence" in audit
        stored = b"".join(row.body_enc for row in await session.scalars(select(CaseEvidenceRow)))
        assert NOTE.encode() not in stored  # sealed
    detail = await case_detail(ctx, "reviewer:rita", case_id, frozenset())
    assert [text for _, _, text in detail.notes] == [f"[reviewer:rita, with the decision] {NOTE}"]


async def test_erasing_a_cases_evidence_leaves_the_audit_chain_verifying(ctx: ServerContext) -> None:
    case_id = await _case(ctx, "mallory")
    other = await _case(ctx, "eve")
    await apply_action(ctx, "reviewer:rita", None, case_id, CaseAction.ESCALATE, NOTE)
    async with ctx.sessions() as session, session.begin():
        await store_case_evidence(
            ctx.report_key,
            session,
            case_id=case_id,
            kind=EvidenceKind.RISK_TIMELINE,
            author="system:risk",
            content=b'[{"k": "msg"}]',
            now_ms=T0,
        )
        await store_case_evidence(
            ctx.report_key,
            session,
            case_id=other,
            kind=EvidenceKind.ACTION_NOTE,
            author="r",
            content=b"x",
            now_ms=T0,
        )
    assert await erase_case_evidence(ctx, "lead:lee", case_id) == 2
    async with ctx.sessions() as session:
        assert await read_case_evidence(ctx.report_key, session, case_id) == []
        assert await session.get(CaseKeyRow, case_id) is None  # the key is gone with the content
        assert [kind for _, kind, *_ in await read_case_evidence(ctx.report_key, session, other)] == [
            EvidenceKind.ACTION_NOTE
        ]
        check = await verify_chain(session)
        assert check.ok and check.entries == 2  # the escalation (referencing the note) and the erasure
    with pytest.raises(NotFoundError):
        await erase_case_evidence(ctx, "lead:lee", 999)


async def test_evidence_moved_to_another_case_does_not_open(ctx: ServerContext) -> None:
    first, second = await _case(ctx, "mallory"), await _case(ctx, "eve")
    async with ctx.sessions() as session, session.begin():
        await store_case_evidence(
            ctx.report_key,
            session,
            case_id=first,
            kind=EvidenceKind.ACTION_NOTE,
            author="r",
            content=b"a",
            now_ms=T0,
        )
        await store_case_evidence(
            ctx.report_key,
            session,
            case_id=second,
            kind=EvidenceKind.ACTION_NOTE,
            author="r",
            content=b"b",
            now_ms=T0,
        )
        rows = list(await session.scalars(select(CaseEvidenceRow).order_by(CaseEvidenceRow.id)))
        rows[1].body_enc = rows[0].body_enc  # sealed under the first case's key
    async with ctx.sessions() as session:
        with pytest.raises(StorageError):
            await read_case_evidence(ctx.report_key, session, second)

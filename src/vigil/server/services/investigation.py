"""Looking an account up for an investigation: its cases and decisions, reports it made and received,
risk scores with their reasons over time, labels, and accounts related through metadata the server
already holds (shared groups, and contact-graph neighbours: accepted contacts), never content. Every
lookup is audited."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import aliased

from vigil.errors import NotFoundError
from vigil.server.context import ServerContext
from vigil.server.db.accounts import AccountActionRow, UserRepository, UserRow
from vigil.server.db.cases import CaseRow, ReportRow
from vigil.server.db.contacts import ConnectionRow
from vigil.server.db.groups import GroupMemberRow
from vigil.server.services.audit import append_audit
from vigil.server.services.risk_history import RiskPoint, history_of

__all__ = ["AccountLookup", "look_up"]


@dataclass(frozen=True, slots=True)
class AccountLookup:
    username: str
    user_id: int
    age_band: str
    cases: list[tuple[int, str, str, int]]  # (id, state, queue, created_at_ms)
    actions: list[tuple[int, str, int | None]]  # (created_at_ms, action, case id)
    reports_made: list[tuple[int, str, str]]  # (created_at_ms, reported username, reason)
    reports_received: list[tuple[int, str, str]]  # (created_at_ms, reporter username, reason)
    shared_groups: list[tuple[str, int]]  # (username, groups shared)
    contacts: list[tuple[str, str, int]]  # contact-graph neighbours: (username, age band, connected since)
    risk: list[RiskPoint]  # assessments over time, oldest first


async def look_up(ctx: ServerContext, actor: str, username: str) -> AccountLookup:
    """Raises NotFoundError."""
    now = ctx.clock_ms()
    async with ctx.sessions() as session, session.begin():
        user = await UserRepository(session).by_username(username[:32])
        if user is None:
            raise NotFoundError(f"no account named {username[:32]}")
        cases = (
            await session.execute(
                select(CaseRow.id, CaseRow.state, CaseRow.queue, CaseRow.created_at_ms)
                .where(CaseRow.subject_user_id == user.id)
                .order_by(CaseRow.id)
            )
        ).all()
        actions = (
            await session.execute(
                select(AccountActionRow.created_at_ms, AccountActionRow.action, AccountActionRow.case_id)
                .where(AccountActionRow.user_id == user.id)
                .order_by(AccountActionRow.id)
            )
        ).all()
        other = aliased(UserRow)
        made = (
            await session.execute(
                select(ReportRow.created_at_ms, other.username, ReportRow.reason)
                .join(other, other.id == ReportRow.reported_user_id)
                .where(ReportRow.reporter_user_id == user.id)
                .order_by(ReportRow.id)
            )
        ).all()
        received = (
            await session.execute(
                select(ReportRow.created_at_ms, other.username, ReportRow.reason)
                .join(other, other.id == ReportRow.reporter_user_id)
                .where(ReportRow.reported_user_id == user.id)
                .order_by(ReportRow.id)
            )
        ).all()
        mine = select(GroupMemberRow.group_id).where(GroupMemberRow.user_id == user.id)
        peers = (
            await session.execute(
                select(other.username, GroupMemberRow.group_id)
                .join(other, other.id == GroupMemberRow.user_id)
                .where(GroupMemberRow.group_id.in_(mine), GroupMemberRow.user_id != user.id)
            )
        ).all()
        neighbours = (
            await session.execute(
                select(other.username, other.age_band, ConnectionRow.created_at_ms)
                .join(
                    ConnectionRow,
                    or_(
                        (ConnectionRow.low_user_id == user.id) & (ConnectionRow.high_user_id == other.id),
                        (ConnectionRow.high_user_id == user.id) & (ConnectionRow.low_user_id == other.id),
                    ),
                )
                .order_by(ConnectionRow.created_at_ms, other.username)
            )
        ).all()
        risk = await history_of(session, user.id)
        await append_audit(
            session, now_ms=now, actor=actor, action="account.looked_up", target=f"user:{user.username}"
        )
        shared: dict[str, int] = {}
        for name, _group in peers:
            shared[name] = shared.get(name, 0) + 1
        return AccountLookup(
            username=user.username,
            user_id=user.id,
            age_band=user.age_band,
            cases=[(r[0], r[1], r[2], r[3]) for r in cases],
            actions=[(r[0], r[1], r[2]) for r in actions],
            reports_made=[(r[0], r[1], r[2]) for r in made],
            reports_received=[(r[0], r[1], r[2]) for r in received],
            shared_groups=sorted(shared.items(), key=lambda kv: (-kv[1], kv[0])),
            contacts=[(r[0], r[1], r[2]) for r in neighbours],
            risk=risk,
        )

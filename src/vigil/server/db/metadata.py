"""The behavioural layer's inputs and memory: the metadata event log and per-account risk state.
Metadata only: nothing here holds content."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Integer,
    Row,
    String,
    Table,
    Text,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    union,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, aliased, mapped_column

from vigil.protocol.ids import UserId
from vigil.server.db.accounts import UserRow
from vigil.server.db.base import Base
from vigil.server.db.cases import ReportRow
from vigil.server.db.contacts import BlockRow, ConnectionRow, ContactRequestRow
from vigil.server.db.groups import MembershipPeriodRow
from vigil.server.db.messaging import MessageRow
from vigil.server.db.pseudonyms import key_fingerprint, pseudonym

__all__ = [
    "EventColumns",
    "MetadataEventRow",
    "MetadataKeyRow",
    "MetadataRepository",
    "RiskHistoryRepository",
    "RiskHistoryRow",
    "RiskStateRepository",
    "RiskStateRow",
]


_log = logging.getLogger(__name__)


# One event as `MetadataRepository.columns_between` reads it: id, at_ms, kind, actor, target, group_id,
# content, reason.
EventColumns = Row[int, int, str, str, str | None, str | None, str | None, str | None]


class MetadataEventRow(Base):
    """One `vigil.safety.behavior.events` event, in the columns of its compact record (`k t s r g c why`;
    not `b`, the size bucket: no risk feature reads it, so the server does not keep it).
    Accounts are named by pseudonym (`vigil.server.db.pseudonyms`), never by username. Deleted after the
    retention limit."""

    __tablename__ = "metadata_events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    kind: Mapped[str] = mapped_column(String(24))
    actor: Mapped[str] = mapped_column(String(32), index=True)
    target: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    group_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    content: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(24), nullable=True)


class MetadataKeyRow(Base):
    """The one row saying which pseudonym key every account in the log is named under (its fingerprint),
    so a start-up with nothing to rotate costs one read; NULL before any start-up recorded one."""

    __tablename__ = "metadata_log_key"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_fingerprint: Mapped[str | None] = mapped_column(String(32), nullable=True)


_KEY_ROW = 1
# The log may name accounts under a key no start-up could rename it from (never a fingerprint: those are hex).
UNSETTLED = "unsettled"


class RiskStateRow(Base):
    """The highest protective level applied to an account so far, with the assessment behind it."""

    __tablename__ = "risk_state"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    level: Mapped[str] = mapped_column(String(32))
    score: Mapped[float] = mapped_column(Float)
    reasons: Mapped[str] = mapped_column(Text)  # JSON list of sentences
    case_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)


class RiskHistoryRow(Base):
    """One risk assessment of an account as it was at the time, so an investigation sees the score and its
    reasons over time (the risk state keeps only the level actions were taken at). Written when a pass's
    assessment differs from the account's previous row (`vigil.server.services.risk_history`)."""

    __tablename__ = "risk_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    at_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    score: Mapped[float] = mapped_column(Float)
    level: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(40))
    reasons: Mapped[str] = mapped_column(Text)  # JSON list of sentences


class MetadataRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def add(self, row: MetadataEventRow) -> None:
        self._session.add(row)

    async def add_values(self, rows: Sequence[dict[str, Any]]) -> None:
        """Inserts events given as column values, in one executemany (on the table, not the mapped class:
        the ORM's bulk insert processes every row in Python first)."""
        if rows:
            await self._session.execute(insert(cast(Table, MetadataEventRow.__table__)), rows)

    async def columns_between(self, since_ms: int, until_ms: int) -> Sequence[EventColumns]:
        """Events with `since_ms <= at < until_ms` in time order, as Core rows of (id, at_ms, kind, actor,
        target, group_id, content, reason), in that order (read by position): no ORM objects for the risk
        scorer's bulk read."""
        e = MetadataEventRow
        rows = await self._session.execute(
            select(e.id, e.at_ms, e.kind, e.actor, e.target, e.group_id, e.content, e.reason)
            .where(MetadataEventRow.at_ms >= since_ms, MetadataEventRow.at_ms < until_ms)
            .order_by(MetadataEventRow.at_ms, MetadataEventRow.id)
        )
        return rows.all()

    async def between(self, since_ms: int, until_ms: int) -> Sequence[MetadataEventRow]:
        """Events with `since_ms <= at < until_ms`, in time order."""
        rows = await self._session.scalars(
            select(MetadataEventRow)
            .where(MetadataEventRow.at_ms >= since_ms, MetadataEventRow.at_ms < until_ms)
            .order_by(MetadataEventRow.at_ms, MetadataEventRow.id)
        )
        return rows.all()

    async def latest_involving(self, account: UserId, limit: int) -> Sequence[MetadataEventRow]:
        """The latest `limit` events the account (by pseudonym) took part in (as actor or target), newest
        first."""
        rows = await self._session.scalars(
            select(MetadataEventRow)
            .where(or_(MetadataEventRow.actor == account, MetadataEventRow.target == account))
            .order_by(MetadataEventRow.at_ms.desc(), MetadataEventRow.id.desc())
            .limit(limit)
        )
        return rows.all()

    async def counterparts_of(self, user_id: int) -> set[int]:
        """The accounts the server has a recorded relation with `user_id` through (contact requests and
        connections, blocks and reports either way, groups shared at any time, direct messages either way):
        whom that account's metadata events name, unless the relation's own record is gone already (one
        query)."""
        me = user_id
        username = select(UserRow.username).where(UserRow.id == me).scalar_subquery()
        co_member = aliased(MembershipPeriodRow)
        relations = union(
            select(ContactRequestRow.recipient_user_id).where(ContactRequestRow.requester_user_id == me),
            select(ContactRequestRow.requester_user_id).where(ContactRequestRow.recipient_user_id == me),
            select(ConnectionRow.high_user_id).where(ConnectionRow.low_user_id == me),
            select(ConnectionRow.low_user_id).where(ConnectionRow.high_user_id == me),
            select(BlockRow.blocked_user_id).where(BlockRow.blocker_user_id == me),
            select(BlockRow.blocker_user_id).where(BlockRow.blocked_user_id == me),
            select(ReportRow.reported_user_id).where(ReportRow.reporter_user_id == me),
            select(ReportRow.reporter_user_id).where(ReportRow.reported_user_id == me),
            select(co_member.user_id)
            .join(MembershipPeriodRow, MembershipPeriodRow.group_id == co_member.group_id)
            .where(MembershipPeriodRow.user_id == me),
            select(MessageRow.sender_user_id).where(MessageRow.conversation == username),
            select(UserRow.id)
            .join(MessageRow, MessageRow.conversation == UserRow.username)
            .where(MessageRow.sender_user_id == me),
        )
        return {int(i) for i in (await self._session.scalars(select(relations.subquery().c[0]))).all()} - {me}

    async def delete_before(self, cutoff_ms: int) -> int:
        """Deletes events older than `cutoff_ms` (a preservation hold keeps its copy in the case); returns
        how many."""
        statement = delete(MetadataEventRow).where(MetadataEventRow.at_ms < cutoff_ms)
        result = await self._session.execute(statement)
        return int(getattr(result, "rowcount", 0) or 0)

    async def settle_pseudonym_key(self, previous_keys: Sequence[bytes], key: bytes) -> int:
        """At start-up: renames the log to `key` (`rename_pseudonyms`) unless it is recorded as named under
        `key` already, then records that it is; returns how many events changed. A log recorded under
        another key with no `previous_keys` to rename it from is marked unsettled instead (so a later
        start-up given the previous key still rescans it), with a warning naming the missing setting."""
        fingerprint = key_fingerprint(key)
        state = await self._session.get(MetadataKeyRow, _KEY_ROW)
        if state is None:  # migration 0029 adds the row; a database built without it gets it here
            state = MetadataKeyRow(id=_KEY_ROW, key_fingerprint=None)
            self._session.add(state)
        if state.key_fingerprint == fingerprint:
            return 0
        if state.key_fingerprint is not None and not previous_keys:
            _log.warning(
                "the metadata log's accounts are named under another pseudonym key: set "
                "VIGIL_METADATA_PSEUDONYM_PREVIOUS_KEY to the key it was written under"
            )
            state.key_fingerprint = UNSETTLED
            return 0
        changed = await self.rename_pseudonyms(previous_keys, key)
        state.key_fingerprint = fingerprint
        return changed

    async def rename_pseudonyms(self, previous_keys: Sequence[bytes], key: bytes) -> int:
        """Renames every account the log names under one of `previous_keys` to its name under `key` (a key
        rotation); returns how many events changed. One pass over the log's distinct names, then one indexed
        update per account and column found, so a log already renamed costs one query."""
        if not previous_keys:
            return 0
        names = set(await self._session.scalars(select(MetadataEventRow.actor).distinct()))
        names |= set(
            await self._session.scalars(
                select(MetadataEventRow.target).where(MetadataEventRow.target.is_not(None)).distinct()
            )
        )
        if not names:
            return 0
        renames: dict[str, str] = {}
        for user_id in await self._session.scalars(select(UserRow.id)):
            for previous in previous_keys:
                old = pseudonym(previous, user_id)
                if old in names:
                    renames[old] = pseudonym(key, user_id)
        changed = 0
        for old, new in renames.items():
            for column in (MetadataEventRow.actor, MetadataEventRow.target):
                result = await self._session.execute(
                    update(MetadataEventRow).where(column == old).values({column.key: new})
                )
                changed += int(getattr(result, "rowcount", 0) or 0)
        return changed


class RiskStateRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, user_id: int) -> RiskStateRow | None:
        return await self._session.get(RiskStateRow, user_id)

    async def levels_of(self, user_ids: Collection[int]) -> dict[int, tuple[str, int | None]]:
        """The level applied so far to each of `user_ids` that has one, with its case, in one query."""
        if not user_ids:
            return {}
        rows = await self._session.execute(
            select(RiskStateRow.user_id, RiskStateRow.level, RiskStateRow.case_id).where(
                RiskStateRow.user_id.in_(list(user_ids))
            )
        )
        return {int(user_id): (str(level), case_id) for user_id, level, case_id in rows.all()}

    async def put_many(self, rows: Sequence[dict[str, Any]], existing: Collection[int]) -> None:
        """Writes states given as column values: one insert for the accounts without a state, one
        executemany update for those in `existing`."""
        table = cast(Table, RiskStateRow.__table__)
        new = [row for row in rows if row["user_id"] not in existing]
        if new:
            await self._session.execute(insert(table), new)
        changed = [row for row in rows if row["user_id"] in existing]
        if changed:
            columns = ("level", "score", "reasons", "case_id", "updated_at_ms")
            await self._session.execute(
                update(table)
                .where(table.c.user_id == bindparam("state_user_id"))
                .values({c: bindparam(f"new_{c}") for c in columns}),
                [
                    {"state_user_id": row["user_id"], **{f"new_{c}": row[c] for c in columns}}
                    for row in changed
                ],
            )


class RiskHistoryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Inserts rows given as column values, in one statement."""
        if rows:
            await self._session.execute(insert(cast(Table, RiskHistoryRow.__table__)), list(rows))

    async def latest(self, user_ids: Collection[int]) -> dict[int, RiskHistoryRow]:
        """Each account's newest row, for the accounts that have one."""
        if not user_ids:
            return {}
        newest = (
            select(RiskHistoryRow.user_id, func.max(RiskHistoryRow.id).label("id"))
            .where(RiskHistoryRow.user_id.in_(user_ids))
            .group_by(RiskHistoryRow.user_id)
            .subquery()
        )
        rows = await self._session.scalars(
            select(RiskHistoryRow).join(newest, newest.c.id == RiskHistoryRow.id)
        )
        return {row.user_id: row for row in rows}

    async def of_user(self, user_id: int, limit: int) -> Sequence[RiskHistoryRow]:
        """The account's newest `limit` rows, oldest first."""
        rows = await self._session.scalars(
            select(RiskHistoryRow)
            .where(RiskHistoryRow.user_id == user_id)
            .order_by(RiskHistoryRow.id.desc())
            .limit(limit)
        )
        return list(reversed(rows.all()))

    async def delete_before(self, cutoff_ms: int) -> int:
        result = await self._session.execute(delete(RiskHistoryRow).where(RiskHistoryRow.at_ms < cutoff_ms))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

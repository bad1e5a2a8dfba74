"""Accounts: users, their devices and one-time keys, and an account's standing and the actions
that set it. Only public keys and hashes of credentials: no private key material."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Table,
    UniqueConstraint,
    delete,
    func,
    insert,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from vigil.server.db.base import Base

__all__ = [
    "TOMBSTONE_PREFIX",
    "AccountActionRow",
    "AccountStandingRow",
    "DeviceRepository",
    "DeviceRow",
    "KeyRepository",
    "OneTimeKeyRow",
    "StandingRepository",
    "UserRepository",
    "UserRow",
]


# A deleted account keeps its row (its id stays valid for what remains) under a username of this form,
# and its metadata is gone (`vigil.server.services.deletion`).
TOMBSTONE_PREFIX = "deleted_"


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(32), unique=True)
    age_band: Mapped[str] = mapped_column(String(16))
    # The day the band next changes (a minor's 16th or 18th birthday, ISO date); None for an adult, so
    # no adult's birth date is kept. The age-band job moves bands on (`vigil.safety.age.advance`).
    band_changes_on: Mapped[str | None] = mapped_column(String(10), nullable=True, index=True)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    # Set while a deleted account's username and metadata are kept for a hold, open case or unopened
    # voucher; the deleted_accounts sweep finishes the deletion once none is left, and clears it.
    deletion_pending_since_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)


class DeviceRow(Base):
    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    curve25519: Mapped[str] = mapped_column(String(64))
    ed25519: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))
    credential_sha256: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class OneTimeKeyRow(Base):
    __tablename__ = "one_time_keys"
    __table_args__ = (UniqueConstraint("device_id", "key_id", "is_fallback", name="uq_otk_device_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    key_id: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))
    is_fallback: Mapped[bool] = mapped_column(Boolean, default=False)


class AccountStandingRow(Base):
    """Absent row = active. `standing` is a `vigil.safety.policy.Standing`."""

    __tablename__ = "account_standing"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    standing: Mapped[str] = mapped_column(String(16))
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)


class AccountActionRow(Base):
    __tablename__ = "account_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    case_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reviewer_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    policy_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the policy a decision cites


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def by_username(self, username: str) -> UserRow | None:
        return await self._session.scalar(select(UserRow).where(UserRow.username == username))

    async def by_id(self, user_id: int) -> UserRow | None:
        return await self._session.get(UserRow, user_id)

    async def all(self) -> Sequence[UserRow]:
        return (await self._session.scalars(select(UserRow))).all()

    async def band_changes_due(self, today_iso: str) -> Sequence[UserRow]:
        """Accounts whose age band changes on or before `today_iso`."""
        return (
            await self._session.scalars(select(UserRow).where(UserRow.band_changes_on <= today_iso))
        ).all()

    async def age_facts(self) -> list[tuple[int, str, int, bool]]:
        """(id, age band, created at, deleted) of every account, as plain tuples (Core: no ORM objects)."""
        rows = await self._session.execute(
            select(
                UserRow.id,
                UserRow.age_band,
                UserRow.created_at_ms,
                UserRow.username.startswith(TOMBSTONE_PREFIX, autoescape=True),
            )
        )
        return [(int(i), str(b), int(c), bool(d)) for i, b, c, d in rows]

    async def by_ids(self, user_ids: Collection[int]) -> Sequence[UserRow]:
        return (await self._session.scalars(select(UserRow).where(UserRow.id.in_(list(user_ids))))).all()

    async def ids_after(self, after: int, limit: int) -> list[int]:
        """The first `limit` account ids above `after`, ascending (a scan over every account in batches)."""
        query = select(UserRow.id).where(UserRow.id > after).order_by(UserRow.id).limit(limit)
        return [int(i) for i in (await self._session.scalars(query)).all()]

    async def by_usernames(self, usernames: Collection[str]) -> Sequence[UserRow]:
        return (
            await self._session.scalars(select(UserRow).where(UserRow.username.in_(list(usernames))))
        ).all()

    async def add(self, row: UserRow) -> UserRow:
        self._session.add(row)
        await self._session.flush()
        return row


class DeviceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, device_id: str) -> DeviceRow | None:
        return await self._session.get(DeviceRow, device_id)

    async def of_user(self, user_id: int) -> Sequence[DeviceRow]:
        rows = await self._session.scalars(
            select(DeviceRow)
            .where(DeviceRow.user_id == user_id)
            .order_by(DeviceRow.created_at_ms, DeviceRow.id)
        )
        return rows.all()

    async def add(self, row: DeviceRow) -> None:
        self._session.add(row)
        await self._session.flush()

    async def with_user(self, device_id: str) -> tuple[DeviceRow, UserRow] | None:
        """The device and its account in one round trip (the authentication hot path)."""
        row = (
            await self._session.execute(
                select(DeviceRow, UserRow)
                .join(UserRow, UserRow.id == DeviceRow.user_id)
                .where(DeviceRow.id == device_id)
            )
        ).first()
        return None if row is None else (row[0], row[1])

    async def with_user_and_standing(self, device_id: str) -> tuple[DeviceRow, UserRow, str | None] | None:
        """The device, its account and the account's standing (None: no standing row) in one round trip."""
        row = (
            await self._session.execute(
                select(DeviceRow, UserRow, AccountStandingRow.standing)
                .join(UserRow, UserRow.id == DeviceRow.user_id)
                .outerjoin(AccountStandingRow, AccountStandingRow.user_id == UserRow.id)
                .where(DeviceRow.id == device_id)
            )
        ).first()
        return None if row is None else (row[0], row[1], row[2])

    async def of_users(self, user_ids: Collection[int]) -> dict[int, list[DeviceRow]]:
        """Devices of several accounts in one query, each list in registration order."""
        rows = await self._session.scalars(
            select(DeviceRow)
            .where(DeviceRow.user_id.in_(user_ids))
            .order_by(DeviceRow.created_at_ms, DeviceRow.id)
        )
        found: dict[int, list[DeviceRow]] = {user_id: [] for user_id in user_ids}
        for row in rows:
            found[row.user_id].append(row)
        return found


CLAIM_ATTEMPTS = 5


class KeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def existing_key_ids(self, device_id: str, *, fallback: bool) -> set[str]:
        rows = await self._session.scalars(
            select(OneTimeKeyRow.key_id).where(
                OneTimeKeyRow.device_id == device_id, OneTimeKeyRow.is_fallback == fallback
            )
        )
        return set(rows.all())

    async def add_all(self, rows: Sequence[OneTimeKeyRow]) -> None:
        self._session.add_all(rows)
        await self._session.flush()

    async def replace_fallback(self, row: OneTimeKeyRow) -> None:
        await self._session.execute(
            delete(OneTimeKeyRow).where(OneTimeKeyRow.device_id == row.device_id, OneTimeKeyRow.is_fallback)
        )
        self._session.add(row)
        await self._session.flush()

    async def count_one_time(self, device_id: str) -> int:
        count = await self._session.scalar(
            select(func.count()).where(OneTimeKeyRow.device_id == device_id, ~OneTimeKeyRow.is_fallback)
        )
        return int(count or 0)

    async def has_fallback(self, device_id: str) -> bool:
        found = await self._session.scalar(
            select(OneTimeKeyRow.id).where(OneTimeKeyRow.device_id == device_id, OneTimeKeyRow.is_fallback)
        )
        return found is not None

    async def take_one(self, device_id: str) -> OneTimeKeyRow | None:
        """Removes and returns one one-time key; a fallback key is returned but kept (it is reusable).

        The key is chosen and deleted in one `DELETE ... RETURNING` statement, so two concurrent claims
        never get the same key on any backend (SQLite runs the statement under its write lock;
        PostgreSQL skips a row another claim has locked). A claim that lost the race for every key left
        tries again, and hands out the fallback key when they are all gone or still locked."""
        for _attempt in range(CLAIM_ATTEMPTS):
            chosen = (
                select(OneTimeKeyRow.id)
                .where(OneTimeKeyRow.device_id == device_id, ~OneTimeKeyRow.is_fallback)
                .order_by(OneTimeKeyRow.id)
                .limit(1)
                .with_for_update(skip_locked=True)
                .scalar_subquery()
            )
            taken = (
                await self._session.execute(
                    delete(OneTimeKeyRow)
                    .where(OneTimeKeyRow.id == chosen)
                    .returning(OneTimeKeyRow.key_id, OneTimeKeyRow.key, OneTimeKeyRow.signature)
                    .execution_options(synchronize_session=False)
                )
            ).first()
            if taken is not None:
                key_id, key, signature = taken
                return OneTimeKeyRow(
                    device_id=device_id, key_id=key_id, key=key, signature=signature, is_fallback=False
                )
            if await self.count_one_time(device_id) == 0:
                break
        return await self._session.scalar(
            select(OneTimeKeyRow).where(OneTimeKeyRow.device_id == device_id, OneTimeKeyRow.is_fallback)
        )


class StandingRepository:
    """An account's standing (no row: active) and the log of actions taken on it."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, user_id: int) -> AccountStandingRow | None:
        return await self._session.get(AccountStandingRow, user_id)

    async def of_users(self, user_ids: Collection[int]) -> dict[int, str]:
        """user id -> standing of those of `user_ids` that have one (the others are active), in one
        query."""
        if not user_ids:
            return {}
        rows = await self._session.execute(
            select(AccountStandingRow.user_id, AccountStandingRow.standing).where(
                AccountStandingRow.user_id.in_(list(user_ids))
            )
        )
        return {int(user_id): str(standing) for user_id, standing in rows}

    async def set(self, user_id: int, standing: str | None, now_ms: int) -> None:
        """Replaces the account's standing; None restores the default (active)."""
        await self._session.execute(delete(AccountStandingRow).where(AccountStandingRow.user_id == user_id))
        if standing is not None:
            self._session.add(AccountStandingRow(user_id=user_id, standing=standing, updated_at_ms=now_ms))

    def add(self, row: AccountStandingRow) -> None:
        self._session.add(row)

    async def restrict_unless_standing(
        self, user_ids: Collection[int], standing: str, action: str, now_ms: int
    ) -> list[int]:
        """Puts each of `user_ids` that has no standing yet (active) in `standing` and logs `action` on
        it (no case, no reviewer: an automatic action), in one query and two inserts; returns those
        changed. An account already in a standing keeps it."""
        if not user_ids:
            return []
        taken = set(
            await self._session.scalars(
                select(AccountStandingRow.user_id).where(AccountStandingRow.user_id.in_(list(user_ids)))
            )
        )
        changed = list(dict.fromkeys(u for u in user_ids if u not in taken))
        if changed:
            await self._session.execute(
                insert(cast(Table, AccountStandingRow.__table__)),
                [{"user_id": u, "standing": standing, "updated_at_ms": now_ms} for u in changed],
            )
            await self._session.execute(
                insert(cast(Table, AccountActionRow.__table__)),
                [
                    {
                        "user_id": u,
                        "action": action,
                        "case_id": None,
                        "reviewer_id": None,
                        "created_at_ms": now_ms,
                    }
                    for u in changed
                ],
            )
        return changed

    def add_action(self, row: AccountActionRow) -> None:
        self._session.add(row)

    async def count_actions(self, user_id: int, policy_id: int, actions: Sequence[str]) -> int:
        """How many of `actions` the account received under the policy (its strikes); an action
        overturned on appeal is no strike."""
        from vigil.server.db.appeals import AppealRow  # appeals name account_actions; not the reverse

        overturned = select(AppealRow.account_action_id).where(AppealRow.state == "overturned")
        found = await self._session.scalar(
            select(func.count(AccountActionRow.id)).where(
                AccountActionRow.user_id == user_id,
                AccountActionRow.policy_id == policy_id,
                AccountActionRow.action.in_(actions),
                AccountActionRow.id.not_in(overturned),
            )
        )
        return int(found or 0)

    async def latest_action(self, user_id: int, actions: Sequence[str]) -> AccountActionRow | None:
        """The account's most recent action among `actions` (what it may appeal)."""
        return await self._session.scalar(
            select(AccountActionRow)
            .where(AccountActionRow.user_id == user_id, AccountActionRow.action.in_(actions))
            .order_by(AccountActionRow.id.desc())
            .limit(1)
        )

"""Groups and their members (the server sees membership, never the E2EE name or topic)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, aliased, mapped_column

from vigil.protocol.wire import AgeBand
from vigil.server.db.accounts import AccountStandingRow, DeviceRow, UserRow
from vigil.server.db.base import Base

__all__ = [
    "GroupMemberRow",
    "GroupRepository",
    "GroupRow",
    "InviteLinkRepository",
    "InviteLinkRow",
    "MembershipPeriodRow",
]

MINOR_BANDS = [band.value for band in AgeBand if band.is_minor]


class GroupRow(Base):
    """A group as the server knows it: an opaque id. Its name and topic exist only inside ciphertexts."""

    __tablename__ = "groups"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_by_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class GroupMemberRow(Base):
    """Membership: the server needs it to fan out group messages and, later, for safety signals."""

    __tablename__ = "group_members"

    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(16))
    joined_at_ms: Mapped[int] = mapped_column(BigInteger)


class MembershipPeriodRow(Base):
    """One stretch of one account's membership of a group, from joining to leaving (open while still a
    member). Reports of group messages are verified against it: the sender and the reporter must both
    have been members when the server accepted the message, whatever happened since."""

    __tablename__ = "group_membership_periods"
    __table_args__ = (Index("ix_group_membership_periods_group_user", "group_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    joined_at_ms: Mapped[int] = mapped_column(BigInteger)
    left_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class InviteLinkRow(Base):
    """A group's invite link, by the SHA-256 of its token (the token itself is shown once, to the admin
    who made it). A group has at most one live link; a revoked one is kept, so that its token is answered
    "revoked" (410) rather than "unknown" (404), until the group is deleted."""

    __tablename__ = "group_invite_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    revoked_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class InviteLinkRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def by_token_hash(self, token_hash: bytes) -> InviteLinkRow | None:
        """The link as stored now, even when this session has read it before."""
        return await self._session.scalar(
            select(InviteLinkRow)
            .where(InviteLinkRow.token_hash == token_hash)
            .execution_options(populate_existing=True)
        )

    async def revoke_live(self, group_id: str, now_ms: int) -> int:
        """Revokes the group's live link, if any; returns how many were revoked (0 or 1)."""
        result = await self._session.execute(
            update(InviteLinkRow)
            .where(InviteLinkRow.group_id == group_id, InviteLinkRow.revoked_at_ms.is_(None))
            .values(revoked_at_ms=now_ms)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def add(self, row: InviteLinkRow) -> None:
        self._session.add(row)
        await self._session.flush()


class GroupRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, group_id: str) -> GroupRow | None:
        return await self._session.get(GroupRow, group_id)

    async def add(self, group: GroupRow, members: Sequence[GroupMemberRow]) -> None:
        self._session.add(group)
        await self._session.flush()
        self._session.add_all(members)
        self._session.add_all(
            MembershipPeriodRow(group_id=m.group_id, user_id=m.user_id, joined_at_ms=m.joined_at_ms)
            for m in members
        )
        await self._session.flush()

    async def lock(self, group_id: str) -> None:
        """Locks the group's row until the transaction ends (PostgreSQL; SQLite has one writer anyway), so
        membership checks and the change they allow are not interleaved with another's."""
        await self._session.execute(select(GroupRow.id).where(GroupRow.id == group_id).with_for_update())

    async def member(self, group_id: str, user_id: int) -> GroupMemberRow | None:
        return await self._session.get(GroupMemberRow, (group_id, user_id))

    async def member_standing(self, group_id: str, user_id: int) -> tuple[bool, str | None]:
        """(whether the account is a member, its standing: None when it has none, i.e. active), in one
        query: a group send needs both and no ORM object."""
        row = (
            await self._session.execute(
                select(GroupMemberRow.user_id, AccountStandingRow.standing)
                .outerjoin(AccountStandingRow, AccountStandingRow.user_id == GroupMemberRow.user_id)
                .where(GroupMemberRow.group_id == group_id, GroupMemberRow.user_id == user_id)
            )
        ).first()
        return (False, None) if row is None else (True, row.standing)

    async def members(self, group_id: str) -> Sequence[tuple[GroupMemberRow, str]]:
        """Members with their usernames, longest-standing first."""
        rows = await self._session.execute(
            select(GroupMemberRow, UserRow.username)
            .join(UserRow, UserRow.id == GroupMemberRow.user_id)
            .where(GroupMemberRow.group_id == group_id)
            .order_by(GroupMemberRow.joined_at_ms, UserRow.username)
        )
        return rows.all()

    async def member_users(self, group_id: str) -> Sequence[UserRow]:
        """The members' accounts (the contact rules need their age bands)."""
        rows = await self._session.scalars(
            select(UserRow)
            .join(GroupMemberRow, GroupMemberRow.user_id == UserRow.id)
            .where(GroupMemberRow.group_id == group_id)
        )
        return rows.all()

    async def has_minor(self, group_id: str) -> bool:
        """Whether any member's account is a minor's (by the stored age band)."""
        found = await self._session.scalar(
            select(GroupMemberRow.user_id)
            .join(UserRow, UserRow.id == GroupMemberRow.user_id)
            .where(GroupMemberRow.group_id == group_id, UserRow.age_band.in_(MINOR_BANDS))
            .limit(1)
        )
        return found is not None

    async def add_member(self, row: GroupMemberRow) -> None:
        self._session.add(row)
        self._session.add(
            MembershipPeriodRow(group_id=row.group_id, user_id=row.user_id, joined_at_ms=row.joined_at_ms)
        )
        await self._session.flush()

    async def remove_member(self, group_id: str, user_id: int, *, now_ms: int) -> None:
        """Removes the member and closes their membership period at `now_ms`."""
        await self._session.execute(
            delete(GroupMemberRow).where(
                GroupMemberRow.group_id == group_id, GroupMemberRow.user_id == user_id
            )
        )
        await self._session.execute(
            update(MembershipPeriodRow)
            .where(
                MembershipPeriodRow.group_id == group_id,
                MembershipPeriodRow.user_id == user_id,
                MembershipPeriodRow.left_at_ms.is_(None),
            )
            .values(left_at_ms=now_ms)
        )

    async def membership_periods(
        self, group_id: str, usernames: Sequence[str]
    ) -> dict[str, list[tuple[int, int | None]]]:
        """username -> every (joined, left) period of that account in the group, oldest first; left is
        None while still a member. Accounts that never were members are absent."""
        if not usernames:
            return {}
        rows = await self._session.execute(
            select(UserRow.username, MembershipPeriodRow.joined_at_ms, MembershipPeriodRow.left_at_ms)
            .join(UserRow, UserRow.id == MembershipPeriodRow.user_id)
            .where(MembershipPeriodRow.group_id == group_id, UserRow.username.in_(list(usernames)))
            .order_by(MembershipPeriodRow.joined_at_ms, MembershipPeriodRow.id)
        )
        periods: dict[str, list[tuple[int, int | None]]] = {}
        for username, joined, left in rows.all():
            periods.setdefault(username, []).append((joined, left))
        return periods

    async def share_a_group(self, a: int, b: int) -> bool:
        """Whether the two accounts are members of at least one common group now."""
        other = aliased(GroupMemberRow)
        found = await self._session.scalar(
            select(GroupMemberRow.group_id)
            .join(other, other.group_id == GroupMemberRow.group_id)
            .where(GroupMemberRow.user_id == a, other.user_id == b)
            .limit(1)
        )
        return found is not None

    async def groups_of(self, user_id: int) -> Sequence[tuple[str, str, int]]:
        """(group id, the user's role, member count) for every group the user is in."""
        counts = (
            select(GroupMemberRow.group_id, func.count().label("members"))
            .group_by(GroupMemberRow.group_id)
            .subquery()
        )
        rows = await self._session.execute(
            select(GroupMemberRow.group_id, GroupMemberRow.role, counts.c.members)
            .join(counts, counts.c.group_id == GroupMemberRow.group_id)
            .where(GroupMemberRow.user_id == user_id)
            .order_by(GroupMemberRow.joined_at_ms)
        )
        return [(group_id, role, int(members)) for group_id, role, members in rows.all()]

    async def member_devices(self, group_id: str) -> Sequence[tuple[DeviceRow, str]]:
        """Every device of every member, with its owner's username."""
        rows = await self._session.execute(
            select(DeviceRow, UserRow.username)
            .join(GroupMemberRow, GroupMemberRow.user_id == DeviceRow.user_id)
            .join(UserRow, UserRow.id == DeviceRow.user_id)
            .where(GroupMemberRow.group_id == group_id)
            .order_by(UserRow.username, DeviceRow.created_at_ms, DeviceRow.id)
        )
        return rows.all()

    async def member_device_owners(self, group_id: str) -> dict[str, str]:
        """device id -> owner's username for every device of every member (one Core query: a group
        send needs no ORM objects)."""
        rows = await self._session.execute(
            select(DeviceRow.id, UserRow.username)
            .join(GroupMemberRow, GroupMemberRow.user_id == DeviceRow.user_id)
            .join(UserRow, UserRow.id == DeviceRow.user_id)
            .where(GroupMemberRow.group_id == group_id)
        )
        return {str(device_id): str(username) for device_id, username in rows}

    async def device_owners(self, device_ids: Sequence[str]) -> dict[str, str]:
        """device id -> username for the devices that exist."""
        if not device_ids:
            return {}
        rows = await self._session.execute(
            select(DeviceRow.id, UserRow.username)
            .join(UserRow, UserRow.id == DeviceRow.user_id)
            .where(DeviceRow.id.in_(device_ids))
        )
        return dict(rows.all())

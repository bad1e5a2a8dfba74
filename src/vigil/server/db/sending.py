"""What a direct send needs to know about its recipient, in one round trip: the account, the rule's
inputs (the sender's standing, a block by the recipient, a connection between the two) and the device
ids of both accounts. The send batch made five queries for it (recipient, standing, block, connection,
devices); one compiled statement with bound parameters is reused for every send."""

from __future__ import annotations

from typing import NamedTuple, cast

from sqlalchemy import Table, and_, bindparam, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.server.db.accounts import AccountStandingRow, DeviceRow, UserRow
from vigil.server.db.contacts import BlockRow, ConnectionRow

__all__ = ["Recipient", "SendingRepository"]


class Recipient(NamedTuple):
    """A recipient as a direct send sees it. `device_ids` are the recipient's and the sender's devices
    (each account's in registration order); `connected` is whether the two are connected contacts."""

    user_id: int
    username: str
    age_band: str
    sender_standing: str | None
    blocked_by_recipient: bool
    connected: bool
    device_ids: dict[int, list[str]]


_SENDER = bindparam("sender", type_=UserRow.id.type)
_TO = bindparam("to", type_=UserRow.username.type)

# On the tables, not the mapped classes: a plain Core statement, no ORM compilation or row loading.
_USERS = cast(Table, UserRow.__table__).c
_DEVICES = cast(Table, DeviceRow.__table__).c
_STANDING = cast(Table, AccountStandingRow.__table__).c
_BLOCKS = cast(Table, BlockRow.__table__).c
_CONNECTIONS = cast(Table, ConnectionRow.__table__).c

_RECIPIENT = (
    select(
        _USERS.id,
        _USERS.username,
        _USERS.age_band,
        select(_STANDING.standing).where(_STANDING.user_id == _SENDER).scalar_subquery(),
        exists().where(_BLOCKS.blocker_user_id == _USERS.id, _BLOCKS.blocked_user_id == _SENDER),
        exists().where(
            or_(
                and_(_CONNECTIONS.low_user_id == _USERS.id, _CONNECTIONS.high_user_id == _SENDER),
                and_(_CONNECTIONS.low_user_id == _SENDER, _CONNECTIONS.high_user_id == _USERS.id),
            )
        ),
        _DEVICES.id,
        _DEVICES.user_id,
    )
    .select_from(cast(Table, UserRow.__table__))
    .outerjoin(
        cast(Table, DeviceRow.__table__), or_(_DEVICES.user_id == _USERS.id, _DEVICES.user_id == _SENDER)
    )
    .where(_USERS.username == _TO)
    .order_by(_DEVICES.created_at_ms, _DEVICES.id)
)


class SendingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def recipient(self, sender_user_id: int, to: str) -> Recipient | None:
        """The account named `to` as sender `sender_user_id` sees it; None if there is none."""
        rows = (await self._session.execute(_RECIPIENT, {"sender": sender_user_id, "to": to})).all()
        if not rows:
            return None
        user_id, username, age_band, standing, blocked, connected = rows[0][:6]
        device_ids: dict[int, list[str]] = {int(user_id): [], sender_user_id: []}
        for row in rows:
            if row[6] is not None:
                device_ids[int(row[7])].append(str(row[6]))
        return Recipient(
            int(user_id), str(username), str(age_band), standing, bool(blocked), bool(connected), device_ids
        )

"""Send, fetch and acknowledge messages: the delivery path of DESIGN.md §3."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal, cast

from vigil.errors import ConflictError, NotFoundError, ValidationError
from vigil.protocol.encoding import b64decode, b64encode
from vigil.protocol.franking import FrankingContext, server_tag
from vigil.protocol.wire import (
    AckRequest,
    Delivery,
    DeviceInfo,
    FetchResponse,
    MessageKind,
    SendAccepted,
    SendRequest,
    StaleDevices,
)
from vigil.server.context import ServerContext
from vigil.server.db.models import MessageRow, QueueRow
from vigil.server.db.repositories import BlobRepository, DeviceRepository, MessageRepository, UserRepository
from vigil.server.services import enforcement, metadata
from vigil.server.services.accounts import AuthenticatedDevice
from vigil.server.services.keys import device_info

__all__ = ["StaleDevicesError", "acknowledge", "fetch_pending", "send_message", "size_bucket", "to_delivery"]


class StaleDevicesError(ConflictError):
    """The sender encrypted for a device set that is not the current one (as Signal-Server's 409)."""

    code = "stale_devices"

    def __init__(self, body: StaleDevices) -> None:
        super().__init__(body.detail)
        self.body = body


def size_bucket(size: int) -> int:
    """Powers of two from 256 bytes: the server records a bucket, not an exact length."""
    bucket = 256
    while bucket < size:
        bucket *= 2
    return bucket


@dataclass(frozen=True, slots=True)
class _Target:
    device_id: str
    username: str


async def send_message(ctx: ServerContext, by: AuthenticatedDevice, request: SendRequest) -> SendAccepted:
    """Accepts one message: checks the device set, tags the commitment, queues one ciphertext per device
    in one transaction, then wakes the devices.

    Raises NotFoundError for an unknown recipient, StaleDevicesError when the ciphertexts do not cover
    exactly the recipient's devices plus the sender's other devices, ValidationError for duplicate
    devices or attachment blobs the sender did not upload.
    """
    counts = Counter(c.device_id for c in request.ciphertexts)
    if any(n > 1 for n in counts.values()):
        raise ValidationError("one ciphertext per device")
    async with ctx.sessions() as session, session.begin():
        messages = MessageRepository(session)
        previous = await messages.by_client_id(by.user_id, request.id)
        if previous is not None:
            return SendAccepted(
                message_id=previous.client_id,
                server_ts_ms=previous.server_ts_ms,
                devices=previous.device_count,
                duplicate=True,
            )
        recipient = await UserRepository(session).by_username(request.to)
        if recipient is None:
            raise NotFoundError(f"no user named {request.to}")
        await enforcement.check_send(session, by.user_id, by.username, recipient)
        by_user = await DeviceRepository(session).of_users({recipient.id, by.user_id})
        recipient_devices = by_user[recipient.id]
        own_devices = [] if recipient.id == by.user_id else by_user[by.user_id]
        expected = {
            d.id: _Target(d.id, recipient.username) for d in recipient_devices if d.id != by.device_id
        } | {d.id: _Target(d.id, by.username) for d in own_devices if d.id != by.device_id}
        provided = set(counts)
        if provided != set(expected):
            missing: dict[str, list[str]] = {}
            extra: dict[str, list[str]] = {}
            for device_id in sorted(set(expected) - provided):
                missing.setdefault(expected[device_id].username, []).append(device_id)
            if provided - set(expected):
                extra[request.to] = sorted(provided - set(expected))
            current: dict[str, list[DeviceInfo]] = {
                request.to: [device_info(d) for d in recipient_devices if d.id != by.device_id]
            }
            if own_devices:
                current[by.username] = [device_info(d) for d in own_devices if d.id != by.device_id]
            raise StaleDevicesError(
                StaleDevices(
                    detail="the device list is out of date; encrypt for exactly these devices",
                    missing=missing,
                    extra=extra,
                    devices=current,
                )
            )
        blobs = BlobRepository(session)
        for blob_id in request.attachments:
            blob = await blobs.get(blob_id)
            if blob is None or blob.uploader_user_id != by.user_id:
                raise ValidationError(f"attachment {blob_id} was not uploaded by the sender")
            fetchers = [d for d in expected if not await blobs.is_fetcher(blob_id, d)]
            await blobs.add_fetchers(blob_id, fetchers)
            blob.attached = True
        now_ms = ctx.clock_ms()
        commitment = b64decode(request.commitment, field="commitment", max_bytes=32)
        tag = server_tag(
            ctx.franking_key,
            FrankingContext(commitment, by.username, request.to, now_ms, request.id),
        )
        bodies = {
            c.device_id: (c.type, b64decode(c.body, field="ciphertext body")) for c in request.ciphertexts
        }
        message = MessageRow(
            client_id=request.id,
            sender_user_id=by.user_id,
            sender_device_id=by.device_id,
            conversation=request.to,
            kind=request.kind.value,
            size_bucket=size_bucket(max(len(body) for _, body in bodies.values())),
            commitment=commitment,
            franking_tag=tag,
            server_ts_ms=now_ms,
            device_count=len(bodies),
        )
        entries = [
            QueueRow(device_id=device_id, message_type=kind, body=body)
            for device_id, (kind, body) in bodies.items()
        ]
        await messages.add(message, entries)
        if recipient.id != by.user_id:
            await metadata.record(
                session,
                metadata.message_event(
                    now_ms,
                    by.username,
                    recipient=recipient.username,
                    group=None,
                    size_bucket=message.size_bucket,
                    kind=request.kind,
                ),
            )
    await ctx.delivery.notify(bodies)
    return SendAccepted(message_id=request.id, server_ts_ms=now_ms, devices=len(bodies))


def to_delivery(entry: QueueRow, message: MessageRow, sender: str) -> Delivery:
    if entry.message_type not in (0, 1, 2):  # 2: a Megolm group message (services/groups.py)
        raise ValidationError("corrupt queue entry")
    message_type = cast(Literal[0, 1, 2], entry.message_type)
    return Delivery(
        delivery_id=entry.id,
        message_id=message.client_id,
        sender=sender,
        sender_device=message.sender_device_id,
        conversation=message.conversation,
        kind=MessageKind(message.kind),
        commitment=b64encode(message.commitment),
        franking_tag=b64encode(message.franking_tag),
        server_ts_ms=message.server_ts_ms,
        type=message_type,
        body=b64encode(entry.body),
    )


async def fetch_pending(
    ctx: ServerContext, by: AuthenticatedDevice, *, limit: int, after: int = 0, skip: Collection[int] = ()
) -> FetchResponse:
    """Queued entries for the device, oldest first, up to `limit`, leaving out `skip` (entries already
    pushed on this device's socket and not yet acknowledged)."""
    async with ctx.sessions() as session:
        rows = await MessageRepository(session).pending(by.device_id, after=after, limit=limit + 1, skip=skip)
        deliveries = [to_delivery(entry, message, sender) for entry, message, sender in rows[:limit]]
        return FetchResponse(messages=deliveries, more=len(rows) > limit)


async def acknowledge(ctx: ServerContext, by: AuthenticatedDevice, request: AckRequest) -> int:
    """Deletes acknowledged entries of the caller's own queue; returns how many were deleted. Acking an
    entry twice, or another device's entry, deletes nothing."""
    async with ctx.sessions() as session, session.begin():
        return await MessageRepository(session).delete_entries(by.device_id, request.delivery_ids)

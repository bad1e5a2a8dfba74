"""Encrypted groups (`client.groups`): membership calls, Megolm sends, room-key sharing and group receive.
The I/O and the order of steps live here; every Megolm seal, open and room-key check is the engine's
(`Engine.group_session`, `seal_group`, `open_group`, `accept_room_key`), built on a `DeviceCore`.

Send: the member device list (server's view, cached; refreshed on a 409) -> refuse if a verified member's
keys changed (`VerificationRequired`) -> rotate the outbound Megolm session if `RotationPolicy` says so
(always when a device left) -> share the current session key with every device that lacks it, each
share Olm-encrypted for its device and sent in one `/v1/to-device` request -> encrypt the franked payload
once -> `POST /v1/groups/{id}/messages`. The ratchets are persisted (one `DeviceCore.commit`) before the
message goes on the network.

Receive: a room key is accepted only from the device that created the session (checked by
`Engine.accept_room_key` against the creator's self-signed keys); a group message only if its session belongs
to that group and to the delivery's sender device, its (session, index) was not seen under another id,
and its franking commitment holds. A removed member never gets keys of later sessions; a late joiner
gets the key at the current index, so earlier messages stay unreadable.
"""

from __future__ import annotations

import functools

from vigil.client.device import DeviceCore, HistoryEntry
from vigil.client.engine import Changes, PeerDevice
from vigil.client.events import (
    GroupUpdated,
    ImageWithheld,
    MessageEvent,
    RejectedDelivery,
    SentMessage,
    group_id_of,
    message_event,
    now_ms,
    received_record,
    rejected,
    sent_record,
)
from vigil.client.safety import ImageSafety
from vigil.client.transport import StaleDeviceList
from vigil.client.verification import VerificationManager
from vigil.errors import ConflictError, DecryptionError, TamperError, ValidationError
from vigil.protocol.attachments import encrypt_attachment
from vigil.protocol.encoding import b64encode
from vigil.protocol.group_wire import (
    AddMemberRequest,
    CreateGroupRequest,
    GroupInfo,
    GroupList,
    GroupMeta,
    GroupRole,
    GroupSendRequest,
    InviteLink,
    JoinGroupRequest,
    group_conversation,
)
from vigil.protocol.ids import GroupId, MessageId, UserId
from vigil.protocol.megolm import RoomKeyShare, RotationPolicy
from vigil.protocol.wire import AttachmentDescriptor, Delivery, DeviceInfo, InnerPayload, MessageKind

__all__ = ["GroupManager"]

SEND_ATTEMPTS = 4


class GroupManager:
    """`client.groups`. Raises what the transport raises (NotFoundError, PermissionDenied, ...)."""

    def __init__(
        self,
        core: DeviceCore,
        verification: VerificationManager,
        safety: ImageSafety,
        policy: RotationPolicy | None = None,
    ) -> None:
        self._core = core
        self._verification = verification
        self._safety = safety
        self.store = core.tables
        self.policy = policy or RotationPolicy()
        self._devices: dict[str, list[PeerDevice]] = {}  # group id -> recipient devices (not this one)

    # ---- membership ------------------------------------------------------------------------------

    async def create(self, members: list[str], *, name: str = "", topic: str = "") -> GroupInfo:
        """Creates a group with this account as admin; name and topic go to members end-to-end."""
        info = await self._core.transport.create_group(CreateGroupRequest(members=members))
        if name or topic:
            await self.set_meta(info.group_id, name, topic)
        return info

    async def set_meta(self, group_id: str, name: str, topic: str = "") -> None:
        """Stores the name/topic locally and sends it to every member device over Olm."""
        meta = GroupMeta(group_id=group_id, name=name, topic=topic)
        with self._core.store.transaction():
            self.store.save_meta(group_id, {"name": name, "topic": topic, "by": self._core.username})
        devices = await self.member_devices(group_id, refresh=True)
        await self._core.send_to_devices(group_conversation(group_id), devices, [meta] * len(devices))

    def meta(self, group_id: str) -> GroupUpdated | None:
        record = self.store.meta(group_id)
        if record is None:
            return None
        by = UserId(str(record["by"]))
        return GroupUpdated(GroupId(group_id), str(record["name"]), str(record["topic"]), by)

    async def add_member(self, group_id: str, username: str, role: GroupRole = GroupRole.MEMBER) -> GroupInfo:
        """Admins only. The new member gets keys at the current index (no history) on the next send."""
        info = await self._core.transport.add_group_member(
            group_id, AddMemberRequest(username=username, role=role)
        )
        self._devices.pop(group_id, None)
        known = self.meta(group_id)
        if known is not None:
            new_devices = [
                d for d in await self.member_devices(group_id, refresh=True) if d.username == username
            ]
            meta = GroupMeta(group_id=group_id, name=known.name, topic=known.topic)
            await self._core.send_to_devices(
                group_conversation(group_id), new_devices, [meta] * len(new_devices)
            )
        return info

    async def create_invite_link(self, group_id: str) -> InviteLink:
        """Admins only. A new invite link (its token is shown only now); the group's previous link stops
        working. Share the token out of band; whoever holds it can ask to join."""
        return await self._core.transport.create_invite_link(group_id)

    async def revoke_invite_link(self, group_id: str) -> None:
        """Admins only. Raises NotFoundError when the group has no live link."""
        await self._core.transport.revoke_invite_link(group_id)

    async def join(self, token: str) -> GroupInfo:
        """Joins a group by its invite link. As for an added member, the members' devices share their
        session keys with this device at their next send (at the current index: no history). The group's
        name and topic come when a member next sends them. Raises NotFoundError (unknown link), GoneError
        (revoked), ConflictError (already a member, or the group is full), PolicyViolation (refused by
        the safety rules), ValidationError (not a token)."""
        info = await self._core.transport.join_group(JoinGroupRequest(token=token))
        self._devices.pop(info.group_id, None)
        return info

    async def remove_member(self, group_id: str, username: str) -> GroupInfo:
        """Admins only. Our outbound session is dropped at once, so the next message uses a new key."""
        info = await self._core.transport.remove_group_member(group_id, username)
        self._forget(group_id)
        return info

    async def leave(self, group_id: str) -> None:
        await self._core.transport.leave_group(group_id)
        self._forget(group_id)

    def _forget(self, group_id: str) -> None:
        self._devices.pop(group_id, None)
        with self._core.store.transaction():
            self.store.drop_outbound(group_id)

    async def info(self, group_id: str) -> GroupInfo:
        return await self._core.transport.group_info(group_id)

    async def list_groups(self) -> GroupList:
        return await self._core.transport.list_groups()

    async def member_devices(self, group_id: str, *, refresh: bool = False) -> list[PeerDevice]:
        """Every device of every member except this one (server's view; cached until a 409)."""
        if refresh or group_id not in self._devices:
            listing = await self._core.transport.group_devices(group_id)
            self._apply_devices(group_id, listing.devices)
        return list(self._devices[group_id])

    def _apply_devices(self, group_id: str, by_user: dict[str, list[DeviceInfo]]) -> None:
        devices: list[PeerDevice] = []
        for username, infos in sorted(by_user.items()):
            devices.extend(self._core.replace_devices(username, infos))  # key-change tracking too
        self._devices[group_id] = devices

    # ---- sending ---------------------------------------------------------------------------------

    async def send_text(self, group_id: str, text: str) -> SentMessage:
        payload = self._core.engine.build_payload(
            group_conversation(group_id), MessageKind.TEXT, now_ms(), body=text
        )
        return await self._send(group_id, payload, [])

    async def send_attachment(
        self, group_id: str, data: bytes, mime: str, *, name: str | None = None, caption: str = ""
    ) -> SentMessage:
        """As in 1:1: the blob is encrypted here and committed to inside the franked message. Raises
        ImageWithheldError (vigil.client.safety), with nothing uploaded or sent, when the image matches the
        known-image list."""
        core = self._core
        await self._safety.check_outgoing(
            group_conversation(group_id), data, mime, caption=caption, name=name
        )  # ImageWithheldError
        encrypted = encrypt_attachment(data)
        uploaded = await core.with_retries(lambda: core.transport.upload_blob(encrypted.blob))
        descriptor = AttachmentDescriptor(
            blob_id=uploaded.blob_id,
            key=b64encode(encrypted.key),
            sha256=b64encode(encrypted.plaintext_sha256),
            size=encrypted.size,
            mime=mime,
            name=name,
        )
        kind = MessageKind.IMAGE if mime.startswith("image/") else MessageKind.FILE
        payload = core.engine.build_payload(
            group_conversation(group_id), kind, now_ms(), body=caption, attachment=descriptor
        )
        return await self._send(group_id, payload, [uploaded.blob_id])

    async def prepare(self, group_id: str, payload: InnerPayload, attachments: list[str]) -> GroupSendRequest:
        """Shares keys as needed and encrypts `payload` once; persists before returning.
        Raises VerificationRequired if a verified member's keys changed and the change is unacknowledged."""
        core = self._core
        devices = await self.member_devices(group_id)
        self._verification.check_can_send({d.username for d in devices})
        record, shares, owed = core.engine.group_session(
            group_id, self.store.outbound(group_id), devices, self.policy, now_ms()
        )
        await self._share(group_id, owed, shares)
        request, changes = core.engine.seal_group(group_id, record, payload, devices, attachments)
        core.commit(
            changes,
            history=HistoryEntry(
                payload.conversation, core.username, payload.message_id, sent_record(payload)
            ),
            processed=(core.username, payload.message_id),
        )
        return request

    async def _share(self, group_id: str, devices: list[PeerDevice], shares: list[RoomKeyShare]) -> None:
        await self._core.send_to_devices(group_conversation(group_id), devices, shares)

    async def _send(self, group_id: str, payload: InnerPayload, attachments: list[str]) -> SentMessage:
        core = self._core
        for _attempt in range(SEND_ATTEMPTS):
            request = await self.prepare(group_id, payload, attachments)
            try:
                accepted = await core.with_retries(
                    functools.partial(core.transport.send_group, group_id, request)
                )
            except StaleDeviceList as stale:
                self._apply_devices(group_id, stale.body.devices)
                continue
            core.keep_server_tag(accepted)
            return SentMessage(MessageId(accepted.message_id), accepted.server_ts_ms, accepted.devices)
        raise ConflictError("the group's devices kept changing; try again")

    # ---- receiving -------------------------------------------------------------------------------

    def accept_room_key(self, share: RoomKeyShare, delivery: Delivery, sender: PeerDevice) -> Changes:
        """Checks a room key that arrived over Olm from `sender`; returns its inbound session to commit
        with the Olm ratchet that carried it. Raises TamperError if a binding fails
        (see `Engine.accept_room_key`)."""
        creator_keys = self._verification.known_keys(sender.username, sender.device_id)
        return self._core.engine.accept_room_key(share, delivery, sender, creator_keys)

    def accept_meta(self, meta: GroupMeta, delivery: Delivery) -> GroupUpdated:
        """Raises TamperError if the metadata names another group than its delivery."""
        if delivery.conversation != group_conversation(meta.group_id):
            raise TamperError("group metadata names another group than its delivery")
        self.store.save_meta(meta.group_id, {"name": meta.name, "topic": meta.topic, "by": delivery.sender})
        return GroupUpdated(GroupId(meta.group_id), meta.name, meta.topic, UserId(delivery.sender))

    async def open(self, delivery: Delivery) -> MessageEvent | RejectedDelivery | ImageWithheld:
        """Decrypts and verifies one group message (`Engine.open_group`); state changes only once
        everything checked out."""
        core = self._core
        group_id = group_id_of(delivery.conversation)
        try:
            if group_id is None:
                raise TamperError("group message outside a group conversation")
            opened = core.engine.open_group(delivery, group_id, self.store)
            attachment = await core.fetch_attachment(opened.payload.attachment)
        except (DecryptionError, TamperError, ValidationError) as error:
            return rejected(delivery, error.detail)
        payload = opened.payload
        event = message_event(payload, delivery, attachment, core.username)
        withheld = await self._safety.check_incoming(  # a known image is never shown
            payload, delivery, attachment, conversation=event.conversation
        )
        shown = event if withheld is None else withheld
        core.commit(
            core.engine.accept(opened),
            history=HistoryEntry(
                delivery.conversation,
                delivery.sender,
                delivery.message_id,
                received_record(payload, delivery, opened.commitment, opened.franking_tag),
            ),
            processed=(delivery.sender, delivery.message_id),
            event=shown,
        )
        return shown

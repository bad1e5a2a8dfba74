"""Encrypted groups for `Client`: membership calls, Megolm sends, room-key sharing and group receive.

Send: the member device list (server's view, cached; refreshed on a 409) -> refuse if a verified member's
keys changed (`VerificationRequired`) -> rotate the outbound Megolm session if `RotationPolicy` says so
(always when a device left) -> share the current session key with every device that lacks it, each
share Olm-encrypted for its device and sent in one `/v1/to-device` request -> encrypt the franked payload
once -> `POST /v1/groups/{id}/messages`. The ratchets are persisted before anything goes on the network.

Receive: a room key is accepted only from the device that created the session (checked by
`accept_room_key` against the creator's self-signed keys); a group message only if its session belongs
to that group and to the delivery's sender device, its (session, index) was not seen under another id,
and its franking commitment holds. A removed member never gets keys of later sessions; a late joiner
gets the key at the current index, so earlier messages stay unreadable.
"""

from __future__ import annotations

import functools
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vigil.client.engine import PeerDevice, device_from_info
from vigil.client.group_store import GroupStore, InboundRecord, OutboundRecord
from vigil.errors import ConflictError, DecryptionError, TamperError, ValidationError
from vigil.protocol.attachments import encrypt_attachment
from vigil.protocol.encoding import b64decode, b64encode
from vigil.protocol.franking import commit, verify_commitment
from vigil.protocol.group_wire import (
    AddMemberRequest,
    CreateGroupRequest,
    GroupInfo,
    GroupList,
    GroupMeta,
    GroupRole,
    GroupSendRequest,
    ToDeviceCiphertext,
    ToDeviceRequest,
    group_conversation,
    pack_group_ciphertext,
    unpack_group_ciphertext,
)
from vigil.protocol.megolm import (
    GroupKeyKind,
    GroupSessionStats,
    OutboundGroupSession,
    RoomKeyShare,
    RotationPolicy,
    accept_room_key,
    new_room_key_share,
    rotation_reason,
)
from vigil.protocol.wire import (
    MAX_CIPHERTEXTS_PER_SEND,
    AttachmentDescriptor,
    Delivery,
    DeviceInfo,
    InnerPayload,
    MessageKind,
)

if TYPE_CHECKING:
    from vigil.client.client import Client, MessageEvent, RejectedDelivery, SentMessage
    from vigil.client.safety import ImageWithheld

__all__ = ["GROUP_PREFIX", "GroupManager", "GroupUpdated", "group_id_of"]

GROUP_PREFIX = "group:"
SEND_ATTEMPTS = 4


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def group_id_of(conversation: str) -> str | None:
    return conversation.removeprefix(GROUP_PREFIX) if conversation.startswith(GROUP_PREFIX) else None


def _device_key(device: PeerDevice) -> str:
    return f"{device.username}/{device.device_id}"


@dataclass(frozen=True, slots=True)
class GroupUpdated:
    """A member told us the group's name and topic (only members ever see them)."""

    group_id: str
    name: str
    topic: str
    by: str


class GroupManager:
    """`client.groups`. Raises what the transport raises (NotFoundError, PermissionDenied, ...)."""

    def __init__(self, client: Client, policy: RotationPolicy | None = None) -> None:
        self._client = client
        self.store = GroupStore(client.store)
        self.policy = policy or RotationPolicy()
        self._devices: dict[str, list[PeerDevice]] = {}  # group id -> recipient devices (not this one)

    # ---- membership ------------------------------------------------------------------------------

    async def create(self, members: list[str], *, name: str = "", topic: str = "") -> GroupInfo:
        """Creates a group with this account as admin; name and topic go to members end-to-end."""
        info = await self._client.transport.create_group(CreateGroupRequest(members=members))
        if name or topic:
            await self.set_meta(info.group_id, name, topic)
        return info

    async def set_meta(self, group_id: str, name: str, topic: str = "") -> None:
        """Stores the name/topic locally and sends it to every member device over Olm."""
        meta = GroupMeta(group_id=group_id, name=name, topic=topic)
        with self._client.store.transaction():
            self.store.save_meta(group_id, {"name": name, "topic": topic, "by": self._client.username})
        devices = await self.member_devices(group_id, refresh=True)
        await self._send_control(group_conversation(group_id), devices, [meta] * len(devices))

    def meta(self, group_id: str) -> GroupUpdated | None:
        record = self.store.meta(group_id)
        if record is None:
            return None
        return GroupUpdated(group_id, str(record["name"]), str(record["topic"]), str(record["by"]))

    async def add_member(self, group_id: str, username: str, role: GroupRole = GroupRole.MEMBER) -> GroupInfo:
        """Admins only. The new member gets keys at the current index (no history) on the next send."""
        info = await self._client.transport.add_group_member(
            group_id, AddMemberRequest(username=username, role=role)
        )
        self._devices.pop(group_id, None)
        known = self.meta(group_id)
        if known is not None:
            new_devices = [
                d for d in await self.member_devices(group_id, refresh=True) if d.username == username
            ]
            meta = GroupMeta(group_id=group_id, name=known.name, topic=known.topic)
            await self._send_control(group_conversation(group_id), new_devices, [meta] * len(new_devices))
        return info

    async def remove_member(self, group_id: str, username: str) -> GroupInfo:
        """Admins only. Our outbound session is dropped at once, so the next message uses a new key."""
        info = await self._client.transport.remove_group_member(group_id, username)
        self._forget(group_id)
        return info

    async def leave(self, group_id: str) -> None:
        await self._client.transport.leave_group(group_id)
        self._forget(group_id)

    def _forget(self, group_id: str) -> None:
        self._devices.pop(group_id, None)
        with self._client.store.transaction():
            self.store.drop_outbound(group_id)

    async def info(self, group_id: str) -> GroupInfo:
        return await self._client.transport.group_info(group_id)

    async def list_groups(self) -> GroupList:
        return await self._client.transport.list_groups()

    async def member_devices(self, group_id: str, *, refresh: bool = False) -> list[PeerDevice]:
        """Every device of every member except this one (server's view; cached until a 409)."""
        if refresh or group_id not in self._devices:
            listing = await self._client.transport.group_devices(group_id)
            self._apply_devices(group_id, listing.devices)
        return list(self._devices[group_id])

    def _apply_devices(self, group_id: str, by_user: dict[str, list[DeviceInfo]]) -> None:
        devices: list[PeerDevice] = []
        for username, infos in sorted(by_user.items()):
            self._client._replace_devices(username, infos)  # key-change tracking and the device table
            devices.extend(
                device_from_info(username, i) for i in infos if i.device_id != self._client.device_id
            )
        self._devices[group_id] = devices

    # ---- sending ---------------------------------------------------------------------------------

    async def send_text(self, group_id: str, text: str) -> SentMessage:
        payload = self._client.engine.build_payload(
            group_conversation(group_id), MessageKind.TEXT, _now_ms(), body=text
        )
        return await self._send(group_id, payload, [])

    async def send_attachment(
        self, group_id: str, data: bytes, mime: str, *, name: str | None = None, caption: str = ""
    ) -> SentMessage:
        """As in 1:1: the blob is encrypted here and committed to inside the franked message. Raises
        ImageWithheldError (vigil.client.safety), with nothing uploaded or sent, when the image matches the
        known-image list."""
        await self._client.safety.check_outgoing(
            group_conversation(group_id), data, mime, caption=caption, name=name
        )  # ImageWithheldError
        encrypted = encrypt_attachment(data)
        uploaded = await self._client._with_retries(
            lambda: self._client.transport.upload_blob(encrypted.blob)
        )
        descriptor = AttachmentDescriptor(
            blob_id=uploaded.blob_id,
            key=b64encode(encrypted.key),
            sha256=b64encode(encrypted.plaintext_sha256),
            size=encrypted.size,
            mime=mime,
            name=name,
        )
        kind = MessageKind.IMAGE if mime.startswith("image/") else MessageKind.FILE
        payload = self._client.engine.build_payload(
            group_conversation(group_id), kind, _now_ms(), body=caption, attachment=descriptor
        )
        return await self._send(group_id, payload, [uploaded.blob_id])

    async def prepare(self, group_id: str, payload: InnerPayload, attachments: list[str]) -> GroupSendRequest:
        """Shares keys as needed and encrypts `payload` once; persists before returning.
        Raises VerificationRequired if a verified member's keys changed and the change is unacknowledged."""
        devices = await self.member_devices(group_id)
        self._client.verification.check_can_send({d.username for d in devices})
        outbound = await self._outbound(group_id, devices)
        commitment = commit(b64decode(payload.franking_key, field="franking key"), payload.franked_bytes())
        ciphertext = outbound.session.encrypt(payload.model_dump_json().encode())
        stats = outbound.stats
        updated = OutboundRecord(
            outbound.session,
            GroupSessionStats(stats.created_at_ms, stats.messages_sent + 1, stats.shared_with),
        )
        client = self._client
        with client.store.transaction():
            self.store.save_outbound(group_id, updated)
            client.store.add_history(
                payload.conversation, client.username, payload.message_id, _record(payload)
            )
            client.store.mark_processed(client.username, payload.message_id)
        return GroupSendRequest(
            id=payload.message_id,
            kind=payload.kind,
            commitment=b64encode(commitment),
            body=b64encode(pack_group_ciphertext(ciphertext)),
            devices=[d.device_id for d in devices],
            attachments=attachments,
        )

    async def _send(self, group_id: str, payload: InnerPayload, attachments: list[str]) -> SentMessage:
        from vigil.client.client import SentMessage
        from vigil.client.transport import StaleDeviceList

        for _attempt in range(SEND_ATTEMPTS):
            request = await self.prepare(group_id, payload, attachments)
            try:
                accepted = await self._client._with_retries(
                    functools.partial(self._client.transport.send_group, group_id, request)
                )
            except StaleDeviceList as stale:
                self._apply_devices(group_id, stale.body.devices)
                continue
            return SentMessage(accepted.message_id, accepted.server_ts_ms, accepted.devices)
        raise ConflictError("the group's devices kept changing; try again")

    async def _outbound(self, group_id: str, devices: list[PeerDevice]) -> OutboundRecord:
        current = frozenset(_device_key(d) for d in devices)
        now = _now_ms()
        record = self.store.outbound(group_id)
        if record is None or rotation_reason(self.policy, record.stats, now_ms=now, current_devices=current):
            record = OutboundRecord(OutboundGroupSession(), GroupSessionStats(now, 0, frozenset()))
        missing = [d for d in devices if _device_key(d) not in record.stats.shared_with]
        if missing:
            await self._share(group_id, record.session, missing)
            stats = record.stats
            record = OutboundRecord(
                record.session,
                GroupSessionStats(stats.created_at_ms, stats.messages_sent, stats.shared_with | current),
            )
            with self._client.store.transaction():
                self.store.save_outbound(group_id, record)
        return record

    async def _share(self, group_id: str, session: OutboundGroupSession, devices: list[PeerDevice]) -> None:
        client = self._client
        shares = [
            new_room_key_share(
                client.engine.account,
                session,
                group_id=group_id,
                creator=client.username,
                creator_device=client.device_id,
                recipient=d.username,
                recipient_device=d.device_id,
                recipient_ed25519=d.ed25519,
            )
            for d in devices
        ]
        # Our own outbound session stays out of the inbound table: we never need to decrypt our own sends.
        await self._send_control(group_conversation(group_id), devices, shares)

    async def _send_control(
        self, conversation: str, devices: list[PeerDevice], messages: list[RoomKeyShare] | list[GroupMeta]
    ) -> None:
        """Olm-encrypts each message for its device and posts them in as few requests as allowed."""
        if not devices:
            return
        client = self._client
        await client._ensure_sessions(devices)
        ciphertexts = []
        for device, message in zip(devices, messages, strict=True):
            parts = client.engine.encrypt_for(device.device_id, message.model_dump_json().encode())
            ciphertexts.append(
                ToDeviceCiphertext(
                    username=device.username,
                    device_id=device.device_id,
                    type=parts.message_type,  # type: ignore[arg-type]
                    body=b64encode(parts.ciphertext),
                )
            )
        with client.store.transaction():
            client._persist()
        for start in range(0, len(ciphertexts), MAX_CIPHERTEXTS_PER_SEND):
            request = ToDeviceRequest(
                id=str(uuid.uuid4()),
                conversation=conversation,
                messages=ciphertexts[start : start + MAX_CIPHERTEXTS_PER_SEND],
            )
            await client._with_retries(functools.partial(client.transport.to_device, request))

    # ---- receiving -------------------------------------------------------------------------------

    def accept_room_key(self, share: RoomKeyShare, delivery: Delivery, sender: PeerDevice) -> None:
        """Checks a room key that arrived over Olm from `sender` and stores its inbound session.
        Raises TamperError if a binding fails (see `vigil.protocol.megolm.accept_room_key`)."""
        if delivery.conversation != group_conversation(share.group_id):
            raise TamperError("room key names another group than its delivery")
        if share.key_kind is not GroupKeyKind.SESSION or (share.creator, share.creator_device) != (
            sender.username,
            sender.device_id,
        ):
            raise TamperError("room key did not come from the device that created the session")
        creator_keys = self._client.verification.known_keys(sender.username, sender.device_id)
        if creator_keys is None:
            raise TamperError("room key creator device is unknown")
        session = accept_room_key(
            share,
            olm_sender_curve25519=sender.curve25519,
            creator_keys=creator_keys,
            own_ed25519=self._client.engine.account.ed25519,
        )
        self.store.save_inbound(InboundRecord(session, share.group_id, sender.username, sender.device_id))

    def accept_meta(self, meta: GroupMeta, delivery: Delivery) -> GroupUpdated:
        """Raises TamperError if the metadata names another group than its delivery."""
        if delivery.conversation != group_conversation(meta.group_id):
            raise TamperError("group metadata names another group than its delivery")
        self.store.save_meta(meta.group_id, {"name": meta.name, "topic": meta.topic, "by": delivery.sender})
        return GroupUpdated(meta.group_id, meta.name, meta.topic, delivery.sender)

    async def open(self, delivery: Delivery) -> MessageEvent | RejectedDelivery | ImageWithheld:
        """Decrypts and verifies one group message; state changes only once everything checked out."""
        from vigil.client.client import _event_from_payload, _rejected

        client = self._client
        group_id = group_id_of(delivery.conversation)
        try:
            if group_id is None:
                raise TamperError("group message outside a group conversation")
            ciphertext = unpack_group_ciphertext(b64decode(delivery.body, field="group ciphertext"))
            record = self.store.inbound(ciphertext.session_id)
            if record is None:
                raise DecryptionError(
                    "no key for this group session (sent before we joined, or after we left)"
                )
            if (record.group_id, record.sender, record.sender_device) != (
                group_id,
                delivery.sender,
                delivery.sender_device,
            ):
                raise TamperError("group session belongs to another group or sender device")
            decrypted = record.session.decrypt(ciphertext)
            earlier = self.store.seen_message(ciphertext.session_id, decrypted.message_index)
            if earlier is not None and earlier != delivery.message_id:
                raise TamperError("replayed group message")
            payload = _verified_payload(delivery, decrypted.plaintext)
            attachment = await client._fetch_attachment(payload.attachment)
        except (DecryptionError, TamperError, ValidationError) as error:
            return _rejected(delivery, error.detail)
        event = _event_from_payload(payload, delivery, attachment, client.username)
        withheld = await client.safety.check_incoming(  # a known image is never shown
            payload, delivery, attachment, conversation=event.conversation
        )
        with client.store.transaction():
            self.store.mark_seen(ciphertext.session_id, decrypted.message_index, delivery.message_id)
            client.store.add_history(
                delivery.conversation, delivery.sender, delivery.message_id, _opened(payload, delivery)
            )
            client.store.mark_processed(delivery.sender, delivery.message_id)
        return event if withheld is None else withheld


def _verified_payload(delivery: Delivery, plaintext: bytes) -> InnerPayload:
    try:
        payload = InnerPayload.model_validate_json(plaintext)
    except ValueError as error:
        raise TamperError("decrypted payload is malformed") from error
    verify_commitment(
        b64decode(payload.franking_key, field="franking key"),
        payload.franked_bytes(),
        b64decode(delivery.commitment, field="commitment"),
    )
    if payload.sender != delivery.sender or payload.message_id != delivery.message_id:
        raise TamperError("payload sender or id differs from the delivery")
    if payload.conversation != delivery.conversation or payload.kind != delivery.kind:
        raise TamperError("payload conversation or kind differs from the delivery")
    return payload


def _record(payload: InnerPayload) -> dict[str, object]:
    return {"payload": payload.model_dump(mode="json")}


def _opened(payload: InnerPayload, delivery: Delivery) -> dict[str, object]:
    """Everything a later report needs, as for 1:1 messages."""
    return {
        "payload": payload.model_dump(mode="json"),
        "commitment": delivery.commitment,
        "franking_tag": delivery.franking_tag,
        "server_ts_ms": delivery.server_ts_ms,
        "sender_device": delivery.sender_device,
    }

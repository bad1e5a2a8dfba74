"""The client's no-I/O core: seals and opens 1:1 (Olm) and group (Megolm) messages. It holds the Olm account
and sessions in memory; every call that changes state returns a `Changes` for the caller to persist (one
store transaction, `DeviceCore.commit`), so nothing can be changed and forgotten.

Opening a delivery works on copies of the account and session (Olm) or on a freshly loaded session (Megolm)
and changes nothing: only `Engine.accept` swaps the new state in, and the caller calls it once the
ciphertext decrypted AND the one franking check (`_verified_payload`: commitment, sender, id,
conversation, kind) passed, so a tampered delivery leaves no trace in the ratchet state.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from typing import Protocol

import pydantic

from vigil.errors import DecryptionError, TamperError
from vigil.protocol.encoding import b64decode, b64encode
from vigil.protocol.franking import commit, new_franking_key, verify_commitment
from vigil.protocol.group_wire import (
    GroupSendRequest,
    group_conversation,
    pack_group_ciphertext,
    unpack_group_ciphertext,
)
from vigil.protocol.megolm import (
    GroupKeyKind,
    GroupSessionStats,
    InboundGroupSession,
    OutboundGroupSession,
    RoomKeyShare,
    RotationPolicy,
    accept_room_key,
    new_room_key_share,
    rotation_reason,
)
from vigil.protocol.olm import (
    DeviceAccount,
    OlmMessageParts,
    PairwiseSession,
    verify_device_keys,
    verify_signed_key,
)
from vigil.protocol.wire import (
    AttachmentDescriptor,
    ClaimedDevice,
    Delivery,
    DeviceInfo,
    DeviceKeys,
    InnerPayload,
    MessageKind,
    OlmCiphertext,
    SendRequest,
)

__all__ = [
    "Changes",
    "DecryptedOlm",
    "Engine",
    "GroupSessions",
    "InboundRecord",
    "OpenedMessage",
    "OutboundRecord",
    "PeerDevice",
    "SessionChange",
    "commitment_of",
    "device_from_info",
]


@dataclass(frozen=True, slots=True)
class PeerDevice:
    username: str
    device_id: str
    curve25519: str
    ed25519: str


@dataclass(slots=True)
class SessionChange:
    peer_device: str
    session: PairwiseSession


@dataclass(frozen=True, slots=True)
class OutboundRecord:
    session: OutboundGroupSession
    stats: GroupSessionStats


@dataclass(frozen=True, slots=True)
class InboundRecord:
    session: InboundGroupSession
    group_id: str
    sender: str
    sender_device: str


@dataclass(slots=True)
class Changes:
    """What an engine call changed: the Olm account (pickled from the engine at commit), Olm sessions,
    outbound Megolm sessions by group id, new inbound Megolm sessions, and (session id, index, message id)
    of group messages now seen."""

    account: bool = False
    sessions: list[SessionChange] = field(default_factory=list)
    outbound: dict[str, OutboundRecord] = field(default_factory=dict)
    inbound: list[InboundRecord] = field(default_factory=list)
    seen: list[tuple[str, int, str]] = field(default_factory=list)

    def merge(self, other: Changes) -> Changes:
        return Changes(
            self.account or other.account,
            [*self.sessions, *other.sessions],
            self.outbound | other.outbound,
            [*self.inbound, *other.inbound],
            [*self.seen, *other.seen],
        )


class GroupSessions(Protocol):
    """Read access to the stored inbound group sessions (`GroupStore` is one)."""

    def inbound(self, session_id: str) -> InboundRecord | None: ...

    def seen_message(self, session_id: str, index: int) -> str | None: ...


@dataclass(frozen=True, slots=True)
class DecryptedOlm:
    """An Olm plaintext and the ratchet state that produced it, not yet applied (`Engine.accept_olm`)."""

    plaintext: bytes
    session: PairwiseSession
    account: DeviceAccount | None


@dataclass(frozen=True, slots=True)
class OpenedMessage:
    """A delivery that decrypted and verified: the payload plus the franking proof a report needs.
    Nothing changed in the engine yet: `Engine.accept` applies the new state (an Olm ratchet, or the
    group message's (session, index) marked seen)."""

    delivery: Delivery
    payload: InnerPayload
    commitment: bytes
    franking_tag: bytes
    session: PairwiseSession | None = None
    account: DeviceAccount | None = None
    group_index: tuple[str, int] | None = None


def commitment_of(payload: InnerPayload) -> bytes:
    """The franking commitment to a payload, as its sender computes it."""
    return commit(b64decode(payload.franking_key, field="franking key"), payload.franked_bytes())


def _device_key(device: PeerDevice) -> str:
    return f"{device.username}/{device.device_id}"


@dataclass(slots=True)
class Engine:
    """`sessions` maps a peer device id to its sessions, the preferred (most recent) first."""

    account: DeviceAccount
    username: str
    device_id: str
    sessions: dict[str, list[PairwiseSession]] = field(default_factory=dict)

    # ---- Olm sessions ----------------------------------------------------------------------------

    def devices_without_session(self, devices: list[PeerDevice]) -> list[PeerDevice]:
        return [d for d in devices if not self.sessions.get(d.device_id)]

    def start_sessions(self, username: str, claimed: list[ClaimedDevice]) -> tuple[list[PeerDevice], Changes]:
        """Verifies each claimed device's self-signature and key signature, then opens an outbound
        session. Raises TamperError on a bad signature, DecryptionError if a device has no key left."""
        started = []
        changes = Changes()
        for device in claimed:
            verify_device_keys(device.keys)
            if device.one_time_key is None:
                raise DecryptionError(f"device {device.device_id} of {username} has no one-time key left")
            verify_signed_key(device.keys.ed25519, device.one_time_key)
            session = self.account.outbound_session(device.keys.curve25519, device.one_time_key.key)
            changes.sessions.append(self._prefer(device.device_id, session))
            started.append(
                PeerDevice(username, device.device_id, device.keys.curve25519, device.keys.ed25519)
            )
        return started, changes

    def _prefer(self, peer_device: str, session: PairwiseSession) -> SessionChange:
        existing = [s for s in self.sessions.get(peer_device, []) if s.session_id != session.session_id]
        self.sessions[peer_device] = [session, *existing]
        return SessionChange(peer_device, session)

    def build_payload(
        self,
        to: str,
        kind: MessageKind,
        sent_at_ms: int,
        body: str = "",
        attachment: AttachmentDescriptor | None = None,
        message_id: str | None = None,
    ) -> InnerPayload:
        return InnerPayload(
            message_id=message_id or str(uuid.uuid4()),
            sender=self.username,
            conversation=to,
            sent_at_ms=sent_at_ms,
            kind=kind,
            body=body,
            attachment=attachment,
            franking_key=b64encode(new_franking_key()),
        )

    # ---- sealing ---------------------------------------------------------------------------------

    def encrypt(
        self, payload: InnerPayload, devices: list[PeerDevice], attachments: list[str]
    ) -> tuple[SendRequest, Changes]:
        """One Olm ciphertext per device. Raises DecryptionError if a device has no session."""
        plaintext = payload.model_dump_json().encode()
        ciphertexts = []
        changes = Changes()
        for device in devices:
            parts, change = self._encrypt_olm(device.device_id, plaintext)
            changes.sessions.append(change)
            ciphertexts.append(
                OlmCiphertext.model_validate(
                    {
                        "device_id": device.device_id,
                        "type": parts.message_type,
                        "body": b64encode(parts.ciphertext),
                    }
                )
            )
        request = SendRequest(
            id=payload.message_id,
            to=payload.conversation,
            kind=payload.kind,
            commitment=b64encode(commitment_of(payload)),
            ciphertexts=ciphertexts,
            attachments=attachments,
        )
        return request, changes

    def encrypt_for(self, device_id: str, plaintext: bytes) -> tuple[OlmMessageParts, Changes]:
        """One Olm message for one device (control messages). Raises DecryptionError without a session."""
        parts, change = self._encrypt_olm(device_id, plaintext)
        return parts, Changes(sessions=[change])

    def _encrypt_olm(self, device_id: str, plaintext: bytes) -> tuple[OlmMessageParts, SessionChange]:
        sessions = self.sessions.get(device_id)
        if not sessions:
            raise DecryptionError(f"no session with device {device_id}")
        return sessions[0].encrypt(plaintext), SessionChange(device_id, sessions[0])

    def group_session(
        self,
        group_id: str,
        stored: OutboundRecord | None,
        devices: list[PeerDevice],
        policy: RotationPolicy,
        now_ms: int,
    ) -> tuple[OutboundRecord, list[RoomKeyShare], list[PeerDevice]]:
        """The outbound session to send with (a new one when `policy` says so, always when a device left),
        the room-key shares still owed to `devices` that lack its key, and those devices. The returned
        record already counts them as shared: persist it only once the shares went out."""
        current = frozenset(_device_key(d) for d in devices)
        record = stored
        if record is None or rotation_reason(policy, record.stats, now_ms=now_ms, current_devices=current):
            record = OutboundRecord(OutboundGroupSession(), GroupSessionStats(now_ms, 0, frozenset()))
        missing = [d for d in devices if _device_key(d) not in record.stats.shared_with]
        if not missing:
            return record, [], []
        # Our own outbound session stays out of the inbound table: we never decrypt our own sends.
        shares = [
            new_room_key_share(
                self.account,
                record.session,
                group_id=group_id,
                creator=self.username,
                creator_device=self.device_id,
                recipient=d.username,
                recipient_device=d.device_id,
                recipient_ed25519=d.ed25519,
            )
            for d in missing
        ]
        stats = record.stats
        stats = GroupSessionStats(stats.created_at_ms, stats.messages_sent, stats.shared_with | current)
        shared = OutboundRecord(record.session, stats)
        return shared, shares, missing

    def seal_group(
        self,
        group_id: str,
        record: OutboundRecord,
        payload: InnerPayload,
        devices: list[PeerDevice],
        attachments: list[str],
    ) -> tuple[GroupSendRequest, Changes]:
        """Encrypts the franked payload once with the group's outbound session."""
        ciphertext = record.session.encrypt(payload.model_dump_json().encode())
        stats = record.stats
        updated = OutboundRecord(
            record.session, GroupSessionStats(stats.created_at_ms, stats.messages_sent + 1, stats.shared_with)
        )
        request = GroupSendRequest(
            id=payload.message_id,
            kind=payload.kind,
            commitment=b64encode(commitment_of(payload)),
            body=b64encode(pack_group_ciphertext(ciphertext)),
            devices=[d.device_id for d in devices],
            attachments=attachments,
        )
        return request, Changes(outbound={group_id: updated})

    # ---- opening ---------------------------------------------------------------------------------

    def open(self, delivery: Delivery, sender_device: PeerDevice, pickle_key: bytes) -> OpenedMessage:
        """Decrypts and verifies a 1:1 delivery from `sender_device` (whose keys the caller looked up), on
        copies of the session and account: the engine itself is unchanged until `accept`.

        Raises DecryptionError if no session opens it, TamperError if the commitment, the sender or the
        conversation does not match what the server delivered.
        """
        raw = self.decrypt_olm(delivery, sender_device, pickle_key)
        return self._opened(delivery, raw.plaintext, session=raw.session, account=raw.account)

    def open_group(self, delivery: Delivery, group_id: str, sessions: GroupSessions) -> OpenedMessage:
        """Decrypts and verifies a group delivery. Its session must belong to that group and to the
        delivery's sender device, and its (session, index) must not have been seen under another message
        id (Megolm does not stop replays). Raises DecryptionError without the session's key, TamperError
        on any binding or franking failure."""
        ciphertext = unpack_group_ciphertext(b64decode(delivery.body, field="group ciphertext"))
        record = sessions.inbound(ciphertext.session_id)
        if record is None:
            raise DecryptionError("no key for this group session (sent before we joined, or after we left)")
        if (record.group_id, record.sender, record.sender_device) != (
            group_id,
            delivery.sender,
            delivery.sender_device,
        ):
            raise TamperError("group session belongs to another group or sender device")
        decrypted = record.session.decrypt(ciphertext)
        earlier = sessions.seen_message(ciphertext.session_id, decrypted.message_index)
        if earlier is not None and earlier != delivery.message_id:
            raise TamperError("replayed group message")
        return self._opened(
            delivery, decrypted.plaintext, group_index=(ciphertext.session_id, decrypted.message_index)
        )

    def _opened(
        self,
        delivery: Delivery,
        plaintext: bytes,
        *,
        session: PairwiseSession | None = None,
        account: DeviceAccount | None = None,
        group_index: tuple[str, int] | None = None,
    ) -> OpenedMessage:
        return OpenedMessage(
            delivery=delivery,
            payload=_verified_payload(delivery, plaintext),
            commitment=b64decode(delivery.commitment, field="commitment"),
            franking_tag=b64decode(delivery.franking_tag, field="franking tag"),
            session=session,
            account=account,
            group_index=group_index,
        )

    def decrypt_olm(self, delivery: Delivery, sender_device: PeerDevice, pickle_key: bytes) -> DecryptedOlm:
        """Decrypts an Olm delivery on copies of the session and account (see `open`), without looking at
        the plaintext. Raises DecryptionError if no session opens it, TamperError for another sender."""
        if sender_device.device_id != delivery.sender_device or sender_device.username != delivery.sender:
            raise TamperError("delivery names a different sender device")
        if delivery.type not in (0, 1):
            raise DecryptionError("not an Olm message")
        parts = OlmMessageParts(delivery.type, b64decode(delivery.body, field="ciphertext"))
        scratch = secrets.token_bytes(32)
        plaintext: bytes | None = None
        chosen: PairwiseSession | None = None
        new_account: DeviceAccount | None = None
        for session in self.sessions.get(delivery.sender_device, []):
            if parts.message_type == 0 and not session.matches(parts):
                continue
            copy = PairwiseSession.from_pickle(session.pickle(scratch), scratch)
            try:
                plaintext = copy.decrypt(parts)
            except DecryptionError:
                continue
            chosen = copy
            break
        if plaintext is None and parts.message_type == 0:
            new_account = DeviceAccount.from_pickle(self.account.pickle(pickle_key), pickle_key)
            chosen, plaintext = new_account.inbound_session(sender_device.curve25519, parts)
        if plaintext is None or chosen is None:
            raise DecryptionError("no session with the sender device opens this message")
        return DecryptedOlm(plaintext, chosen, new_account)

    def accept(self, opened: OpenedMessage) -> Changes:
        """Swaps in the state that opening the message produced; returns it for persisting."""
        changes = Changes()
        if opened.session is not None:
            changes = self.accept_olm(
                opened.delivery.sender_device, DecryptedOlm(b"", opened.session, opened.account)
            )
        if opened.group_index is not None:
            changes.seen.append((*opened.group_index, opened.delivery.message_id))
        return changes

    def accept_olm(self, sender_device: str, decrypted: DecryptedOlm) -> Changes:
        """Swaps in the ratchet state that `decrypt_olm` produced; returns it for persisting."""
        account_changed = decrypted.account is not None
        if decrypted.account is not None:
            self.account = decrypted.account
        return Changes(account=account_changed, sessions=[self._prefer(sender_device, decrypted.session)])

    def accept_room_key(
        self, share: RoomKeyShare, delivery: Delivery, sender: PeerDevice, creator_keys: DeviceKeys | None
    ) -> Changes:
        """Checks a room key that arrived over Olm from `sender` (whose self-signed keys, last seen in its
        owner's device list, are `creator_keys`) and returns its inbound session to store. Raises
        TamperError if a binding fails (see `vigil.protocol.megolm.accept_room_key`)."""
        if delivery.conversation != group_conversation(share.group_id):
            raise TamperError("room key names another group than its delivery")
        if share.key_kind is not GroupKeyKind.SESSION or (share.creator, share.creator_device) != (
            sender.username,
            sender.device_id,
        ):
            raise TamperError("room key did not come from the device that created the session")
        if creator_keys is None:
            raise TamperError("room key creator device is unknown")
        session = accept_room_key(
            share,
            olm_sender_curve25519=sender.curve25519,
            creator_keys=creator_keys,
            own_ed25519=self.account.ed25519,
        )
        return Changes(inbound=[InboundRecord(session, share.group_id, sender.username, sender.device_id)])


def _verified_payload(delivery: Delivery, plaintext: bytes) -> InnerPayload:
    """The one franking check of a decrypted payload, 1:1 and group alike."""
    try:
        payload = InnerPayload.model_validate_json(plaintext)
    except pydantic.ValidationError as error:
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


def device_from_info(username: str, info: DeviceInfo) -> PeerDevice:
    """Raises TamperError unless the device's keys are self-signed."""
    verify_device_keys(info.keys)
    return PeerDevice(username, info.device_id, info.keys.curve25519, info.keys.ed25519)

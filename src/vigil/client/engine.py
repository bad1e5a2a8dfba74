"""The client's no-I/O core: builds send requests and opens deliveries. It holds the Olm account and
sessions in memory and reports what changed; `Client` does the networking and persistence.

Opening a delivery works on copies of the account and session and swaps them in only once the
ciphertext decrypted AND the franking commitment and sender check passed, so a tampered delivery
leaves no trace in the ratchet state.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field

import pydantic

from vigil.errors import DecryptionError, TamperError
from vigil.protocol.encoding import b64decode, b64encode
from vigil.protocol.franking import commit, new_franking_key, verify_commitment
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
    InnerPayload,
    MessageKind,
    OlmCiphertext,
    SendRequest,
)

__all__ = ["DecryptedOlm", "Engine", "OpenedMessage", "PeerDevice", "SessionChange", "device_from_info"]


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
class DecryptedOlm:
    """An Olm plaintext and the ratchet state that produced it, not yet applied (`Engine.accept_olm`)."""

    plaintext: bytes
    session: PairwiseSession
    account: DeviceAccount | None


@dataclass(frozen=True, slots=True)
class OpenedMessage:
    """A delivery that decrypted and verified: the payload plus the franking proof a report needs.
    Nothing changed in the engine yet: `Engine.accept` applies the new ratchet state."""

    delivery: Delivery
    payload: InnerPayload
    commitment: bytes
    franking_tag: bytes
    session: PairwiseSession
    account: DeviceAccount | None


@dataclass(slots=True)
class Engine:
    """`sessions` maps a peer device id to its sessions, the preferred (most recent) first."""

    account: DeviceAccount
    username: str
    device_id: str
    sessions: dict[str, list[PairwiseSession]] = field(default_factory=dict)
    account_changed: bool = False
    changed: list[SessionChange] = field(default_factory=list)

    def take_changes(self) -> tuple[bool, list[SessionChange]]:
        """What to persist since the last call."""
        changes = (self.account_changed, self.changed)
        self.account_changed, self.changed = False, []
        return changes

    def devices_without_session(self, devices: list[PeerDevice]) -> list[PeerDevice]:
        return [d for d in devices if not self.sessions.get(d.device_id)]

    def start_sessions(self, username: str, claimed: list[ClaimedDevice]) -> list[PeerDevice]:
        """Verifies each claimed device's self-signature and key signature, then opens an outbound
        session. Raises TamperError on a bad signature, DecryptionError if a device has no key left."""
        started = []
        for device in claimed:
            verify_device_keys(device.keys)
            if device.one_time_key is None:
                raise DecryptionError(f"device {device.device_id} of {username} has no one-time key left")
            verify_signed_key(device.keys.ed25519, device.one_time_key)
            session = self.account.outbound_session(device.keys.curve25519, device.one_time_key.key)
            self._prefer(device.device_id, session)
            started.append(
                PeerDevice(username, device.device_id, device.keys.curve25519, device.keys.ed25519)
            )
        return started

    def _prefer(self, peer_device: str, session: PairwiseSession) -> None:
        existing = [s for s in self.sessions.get(peer_device, []) if s.session_id != session.session_id]
        self.sessions[peer_device] = [session, *existing]
        self.changed.append(SessionChange(peer_device, session))

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

    def encrypt(
        self, payload: InnerPayload, devices: list[PeerDevice], attachments: list[str]
    ) -> SendRequest:
        """One Olm ciphertext per device. Raises DecryptionError if a device has no session."""
        commitment = commit(b64decode(payload.franking_key, field="franking key"), payload.franked_bytes())
        plaintext = payload.model_dump_json().encode()
        ciphertexts = []
        for device in devices:
            sessions = self.sessions.get(device.device_id)
            if not sessions:
                raise DecryptionError(f"no session with device {device.device_id}")
            parts = sessions[0].encrypt(plaintext)
            self.changed.append(SessionChange(device.device_id, sessions[0]))
            ciphertexts.append(
                OlmCiphertext.model_validate(
                    {"device_id": device.device_id, "type": parts.message_type, "body": b64encode(parts.ciphertext)}
                )
            )
        return SendRequest(
            id=payload.message_id,
            to=payload.conversation,
            kind=payload.kind,
            commitment=b64encode(commitment),
            ciphertexts=ciphertexts,
            attachments=attachments,
        )

    def open(self, delivery: Delivery, sender_device: PeerDevice, pickle_key: bytes) -> OpenedMessage:
        """Decrypts and verifies a delivery from `sender_device` (whose keys the caller looked up), on
        copies of the session and account: the engine itself is unchanged until `accept`.

        Raises DecryptionError if no session opens it, TamperError if the commitment, the sender or the
        conversation does not match what the server delivered.
        """
        raw = self.decrypt_olm(delivery, sender_device, pickle_key)
        payload = self._verified_payload(delivery, raw.plaintext)
        return OpenedMessage(
            delivery=delivery,
            payload=payload,
            commitment=b64decode(delivery.commitment, field="commitment"),
            franking_tag=b64decode(delivery.franking_tag, field="franking tag"),
            session=raw.session,
            account=raw.account,
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

    def accept(self, opened: OpenedMessage) -> None:
        """Swaps in the ratchet state that opening the message produced."""
        if opened.account is not None:
            self.account = opened.account
            self.account_changed = True
        self._prefer(opened.delivery.sender_device, opened.session)

    def accept_olm(self, sender_device: str, decrypted: DecryptedOlm) -> None:
        """Swaps in the ratchet state that `decrypt_olm` produced."""
        if decrypted.account is not None:
            self.account = decrypted.account
            self.account_changed = True
        self._prefer(sender_device, decrypted.session)

    def encrypt_for(self, device_id: str, plaintext: bytes) -> OlmMessageParts:
        """One Olm message for one device (control messages). Raises DecryptionError without a session."""
        sessions = self.sessions.get(device_id)
        if not sessions:
            raise DecryptionError(f"no session with device {device_id}")
        parts = sessions[0].encrypt(plaintext)
        self.changed.append(SessionChange(device_id, sessions[0]))
        return parts

    def _verified_payload(self, delivery: Delivery, plaintext: bytes) -> InnerPayload:
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

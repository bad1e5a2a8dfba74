"""`Client`: the high-level async SDK. Registration, linking devices, sending text and attachments,
receiving (HTTP catch-up or WebSocket push) with exactly-once events for the app."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx

from vigil.client import contacts
from vigil.client.contacts import SafetyNotice
from vigil.client.engine import Engine, OpenedMessage, PeerDevice, device_from_info
from vigil.client.groups import GroupManager, GroupUpdated
from vigil.client.safety import ImageSafety, ImageWithheld
from vigil.client.store import DeviceStore, StoredDevice, StoredSession
from vigil.client.transport import StaleDeviceList, Transport
from vigil.client.verification import VerificationEvent, VerificationManager
from vigil.errors import ConflictError, DecryptionError, StorageError, TamperError, ValidationError
from vigil.protocol.attachments import decrypt_attachment, encrypt_attachment
from vigil.protocol.contacts import ContactRequestList, ContactRequestView
from vigil.protocol.encoding import b64decode, b64encode
from vigil.protocol.olm import DeviceAccount, PairwiseSession
from vigil.protocol.reports import Notice, ReportAccepted, ReportReason
from vigil.protocol.wire import (
    MEGOLM_MESSAGE_TYPE,
    AddDeviceRequest,
    AttachmentDescriptor,
    ClaimKeysRequest,
    Delivery,
    DeviceCredential,
    DeviceInfo,
    InnerPayload,
    MessageKind,
    RegisterAccountRequest,
    SendAccepted,
    SendRequest,
    UploadKeysRequest,
)

__all__ = ["Client", "Event", "MessageEvent", "ReceivedAttachment", "RejectedDelivery", "SentMessage"]

ONE_TIME_KEY_TARGET = 50
REFILL_BELOW = 20
SEND_ATTEMPTS = 4
T = TypeVar("T")
NETWORK_RETRIES = 3


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class ReceivedAttachment:
    data: bytes
    mime: str
    name: str | None


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """A verified message. `conversation` is the other party of a 1:1 chat; `outgoing` marks a copy of
    something this account sent from another of its devices."""

    message_id: str
    conversation: str
    sender: str
    sender_device: str
    kind: MessageKind
    text: str
    attachment: ReceivedAttachment | None
    sent_at_ms: int
    server_ts_ms: int
    outgoing: bool


@dataclass(frozen=True, slots=True)
class RejectedDelivery:
    """A delivery that failed decryption or verification; it was dropped and changed no state."""

    delivery_id: int
    sender: str
    sender_device: str
    reason: str


Event = MessageEvent | RejectedDelivery | GroupUpdated | VerificationEvent | ImageWithheld


@dataclass(frozen=True, slots=True)
class SentMessage:
    message_id: str
    server_ts_ms: int
    devices: int


class Client:
    def __init__(self, store: DeviceStore, transport: Transport, engine: Engine) -> None:
        self.store = store
        self.transport = transport
        self.engine = engine
        self.rejected_notices: list[str] = []  # why the last fetched safety notices were refused
        self.groups = GroupManager(self)  # encrypted groups (vigil.client.groups)
        self.verification = VerificationManager(self)  # safety numbers, SAS, key-change warnings
        self.safety = ImageSafety(self)  # known-image matching before send/show (vigil.client.safety)

    @property
    def username(self) -> str:
        return self.engine.username

    @property
    def device_id(self) -> str:
        return self.engine.device_id

    # ---- lifecycle -------------------------------------------------------------------------------

    @classmethod
    async def register(
        cls, server_url: str, username: str, birth_date: dt.date, store_path: Path, passphrase: str
    ) -> Client:
        """Creates the account and this device. Raises ConflictError (taken name or store already
        registered), PolicyViolation (under 13), ValidationError (bad name or passphrase)."""
        store = DeviceStore(store_path, passphrase)
        if store.get_secret("credential") is not None:
            raise ConflictError(f"{store_path} already holds a registered device")
        account = DeviceAccount()
        transport = Transport(server_url)
        credential = await transport.register(
            RegisterAccountRequest(username=username, birth_date=birth_date, device=account.device_keys())
        )
        return await cls._start(store, transport, account, credential, server_url)

    async def link_device(self, store_path: Path, passphrase: str) -> Client:
        """Registers a new device of this account, authorised by this one; returns its client."""
        store = DeviceStore(store_path, passphrase)
        account = DeviceAccount()
        credential = await self.transport.add_device(AddDeviceRequest(device=account.device_keys()))
        return await Client._start(
            store, Transport(self.transport.server_url), account, credential, self.transport.server_url
        )

    @classmethod
    async def _start(
        cls,
        store: DeviceStore,
        transport: Transport,
        account: DeviceAccount,
        credential: DeviceCredential,
        url: str,
    ) -> Client:
        transport.set_credential(credential.credential)
        with store.transaction():
            store.set_secret("server_url", url)
            store.set_secret("username", credential.username)
            store.set_secret("device_id", credential.device_id)
            store.set_secret("credential", credential.credential)
            store.set_secret("account", account.pickle(store.pickle_key))
        client = cls(store, transport, Engine(account, credential.username, credential.device_id))
        await client.refill_keys()
        return client

    @classmethod
    async def open(cls, store_path: Path, passphrase: str, server_url: str | None = None) -> Client:
        """Opens an existing device store. Raises StorageError on a wrong passphrase or an empty store."""
        store = DeviceStore(store_path, passphrase)
        credential, username, device_id = (
            store.get_secret(n) for n in ("credential", "username", "device_id")
        )
        pickled = store.get_secret("account")
        url = server_url or store.get_secret("server_url")
        if not (credential and username and device_id and pickled and url):
            raise StorageError(f"{store_path} holds no registered device")
        engine = Engine(DeviceAccount.from_pickle(pickled, store.pickle_key), username, device_id)
        for stored in sorted(store.all_sessions(), key=lambda s: -s.last_used_ms):
            engine.sessions.setdefault(stored.peer_device, []).append(
                PairwiseSession.from_pickle(stored.pickle, store.pickle_key)
            )
        return cls(store, Transport(url, credential), engine)

    async def close(self) -> None:
        await self.transport.close()
        self.store.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    # ---- keys and devices --------------------------------------------------------------------------

    def _persist(self) -> None:
        account_changed, changes = self.engine.take_changes()
        now = _now_ms()
        if account_changed:
            self.store.set_secret("account", self.engine.account.pickle(self.store.pickle_key))
        for change in changes:
            self.store.save_session(
                StoredSession(
                    change.session.session_id,
                    change.peer_device,
                    change.session.pickle(self.store.pickle_key),
                    now,
                )
            )

    async def refill_keys(self) -> int:
        """Tops the server's stock of this device's one-time keys up; returns the count stored there."""
        counts = await self.transport.key_counts()
        if counts.one_time_keys >= REFILL_BELOW and counts.fallback_key:
            return counts.one_time_keys
        account = self.engine.account
        fresh = account.new_one_time_keys(max(0, ONE_TIME_KEY_TARGET - counts.one_time_keys))
        fallback = None if counts.fallback_key else account.new_fallback_key()
        with self.store.transaction():
            self.store.set_secret("account", account.pickle(self.store.pickle_key))
        stored = await self.transport.upload_keys(
            UploadKeysRequest(one_time_keys=fresh, fallback_key=fallback)
        )
        account.mark_published()
        with self.store.transaction():
            self.store.set_secret("account", account.pickle(self.store.pickle_key))
        return stored.one_time_keys

    def _known_devices(self, username: str) -> list[PeerDevice]:
        return [
            PeerDevice(d.username, d.device_id, d.curve25519, d.ed25519)
            for d in self.store.devices_of(username)
        ]

    async def refresh_devices(self, username: str) -> list[PeerDevice]:
        listing = await self.transport.devices(username)
        self._replace_devices(username, listing.devices)
        return self._known_devices(username)

    def _replace_devices(self, username: str, infos: list[DeviceInfo]) -> None:
        devices = [device_from_info(username, info) for info in infos if info.device_id != self.device_id]
        self.verification.observe(username, [info for info in infos if info.device_id != self.device_id])
        with self.store.transaction():
            current = {d.device_id for d in devices}
            for old in self.store.devices_of(username):
                if old.device_id not in current:
                    self.store.remove_device(username, old.device_id)
            for device in devices:
                self.store.save_device(
                    StoredDevice(username, device.device_id, device.curve25519, device.ed25519), _now_ms()
                )

    async def _targets(self, to: str) -> list[PeerDevice]:
        names = [to] if to == self.username else [to, self.username]
        targets: list[PeerDevice] = []
        for name in names:
            known = self._known_devices(name)
            if not known and name != self.username:
                known = await self.refresh_devices(name)
            targets.extend(known)
        return targets

    async def _ensure_sessions(self, targets: list[PeerDevice]) -> None:
        missing = self.engine.devices_without_session(targets)
        for username in sorted({d.username for d in missing}):
            ids = [d.device_id for d in missing if d.username == username]
            claimed = await self.transport.claim_keys(ClaimKeysRequest(username=username, device_ids=ids))
            started = self.engine.start_sessions(username, claimed.devices)
            with self.store.transaction():
                for device in started:
                    self.store.save_device(
                        StoredDevice(username, device.device_id, device.curve25519, device.ed25519), _now_ms()
                    )
                self._persist()

    # ---- sending -----------------------------------------------------------------------------------

    async def send_text(self, to: str, text: str) -> SentMessage:
        payload = self.engine.build_payload(to, MessageKind.TEXT, _now_ms(), body=text)
        return await self._send(payload, [])

    async def send_attachment(
        self, to: str, data: bytes, mime: str, *, name: str | None = None, caption: str = ""
    ) -> SentMessage:
        """Encrypts the blob on this device, uploads only ciphertext, and sends its key and plaintext
        hash inside the franked message. Raises ImageWithheldError (vigil.client.safety), with nothing
        uploaded or sent, when the image matches the known-image list."""
        await self.safety.check_outgoing(to, data, mime, caption=caption, name=name)  # ImageWithheldError
        encrypted = encrypt_attachment(data)
        uploaded = await self._with_retries(lambda: self.transport.upload_blob(encrypted.blob))
        descriptor = AttachmentDescriptor(
            blob_id=uploaded.blob_id,
            key=b64encode(encrypted.key),
            sha256=b64encode(encrypted.plaintext_sha256),
            size=encrypted.size,
            mime=mime,
            name=name,
        )
        kind = MessageKind.IMAGE if mime.startswith("image/") else MessageKind.FILE
        payload = self.engine.build_payload(to, kind, _now_ms(), body=caption, attachment=descriptor)
        return await self._send(payload, [uploaded.blob_id])

    async def prepare(self, payload: InnerPayload, attachments: list[str]) -> SendRequest:
        """Encrypts `payload` for every current device of the recipient and of this account, and records
        it locally. The ratchet advanced, so state is persisted before anything goes on the network: a
        crash never reuses a message key. Raises ValidationError when there is no device to send to."""
        targets = await self._targets(payload.conversation)
        self.verification.check_can_send({d.username for d in targets})
        if not targets:
            raise ValidationError("there is no other device to send to")
        await self._ensure_sessions(targets)
        request = self.engine.encrypt(payload, targets, attachments)
        with self.store.transaction():
            self._persist()
            self.store.add_history(payload.conversation, self.username, payload.message_id, _record(payload))
            self.store.mark_processed(self.username, payload.message_id)
        return request

    async def _send(self, payload: InnerPayload, attachments: list[str]) -> SentMessage:
        for _attempt in range(SEND_ATTEMPTS):
            request = await self.prepare(payload, attachments)
            try:
                accepted = await self._post(request)
            except StaleDeviceList as stale:
                for username, infos in stale.body.devices.items():
                    self._replace_devices(username, infos)
                continue
            return SentMessage(accepted.message_id, accepted.server_ts_ms, accepted.devices)
        raise ConflictError("the recipient's devices kept changing; try again")

    async def _post(self, request: SendRequest) -> SendAccepted:
        # The same request is retried unchanged: the message id makes the retry idempotent.
        return await self._with_retries(lambda: self.transport.send(request))

    async def _with_retries(self, call: Callable[[], Awaitable[T]]) -> T:
        for attempt in range(NETWORK_RETRIES):
            try:
                return await call()
            except httpx.TransportError:
                if attempt == NETWORK_RETRIES - 1:
                    raise
                await asyncio.sleep(0.2 * 2**attempt)
        raise AssertionError("unreachable")

    # ---- receiving ---------------------------------------------------------------------------------

    async def fetch(self) -> list[Event]:
        """Catches up over HTTP: every queued delivery, decrypted, verified and acknowledged."""
        events: list[Event] = []
        while True:
            # Acknowledged entries are deleted, so each round simply asks for the oldest pending ones.
            batch = await self.transport.fetch()
            if not batch.messages:
                break
            handled, new_events = await self._handle(batch.messages)
            events.extend(new_events)
            await self.transport.ack(handled)
            if not batch.more:
                break
        return events

    async def listen(self) -> AsyncIterator[Event]:
        """Events pushed over the WebSocket as they arrive; acknowledged once handled."""
        async for deliveries, ack in self.transport.stream():
            handled, events = await self._handle(deliveries)
            await ack(handled)
            for event in events:
                yield event

    async def _handle(self, deliveries: list[Delivery]) -> tuple[list[int], list[Event]]:
        handled: list[int] = []
        events: list[Event] = []
        used_pre_key = False
        for delivery in deliveries:
            event = await self._open(delivery)
            handled.append(delivery.delivery_id)
            used_pre_key |= delivery.type == 0
            if event is not None:
                events.append(event)
        if used_pre_key:
            await self.refill_keys()
        return handled, events

    async def _sender_device(self, delivery: Delivery) -> PeerDevice | None:
        for device in self._known_devices(delivery.sender):
            if device.device_id == delivery.sender_device:
                return device
        for device in await self.refresh_devices(delivery.sender):
            if device.device_id == delivery.sender_device:
                return device
        return None

    async def _open(self, delivery: Delivery) -> Event | None:
        if self.store.is_processed(delivery.sender, delivery.message_id):
            return None  # a redelivery of something already handled: ack it, show nothing
        sender_device = await self._sender_device(delivery)
        if sender_device is None:
            return _rejected(delivery, "the sender device is unknown")
        if delivery.type == MEGOLM_MESSAGE_TYPE:
            return await self.groups.open(delivery)
        if delivery.kind is MessageKind.CONTROL:
            from vigil.client.control import open_control

            return await open_control(self, delivery, sender_device)
        try:
            opened = self.engine.open(delivery, sender_device, self.store.pickle_key)
            attachment = await self._fetch_attachment(opened.payload.attachment)
        except (DecryptionError, TamperError) as error:
            return _rejected(delivery, error.detail)
        self.engine.accept(opened)
        event = _event(opened, attachment, self.username)
        withheld = await self.safety.check_incoming(  # a known image is never shown
            opened.payload, delivery, attachment, conversation=event.conversation
        )
        with self.store.transaction():
            self._persist()
            self.store.add_history(
                event.conversation, delivery.sender, delivery.message_id, _opened_record(opened)
            )
            self.store.mark_processed(delivery.sender, delivery.message_id)
        return event if withheld is None else withheld

    async def _fetch_attachment(self, descriptor: AttachmentDescriptor | None) -> ReceivedAttachment | None:
        """Raises TamperError if the blob is not what the sender committed to."""
        if descriptor is None:
            return None
        blob = await self._with_retries(lambda: self.transport.download_blob(descriptor.blob_id))
        data = decrypt_attachment(
            blob,
            b64decode(descriptor.key, field="attachment key"),
            b64decode(descriptor.sha256, field="attachment hash"),
            descriptor.size,
        )
        return ReceivedAttachment(data, descriptor.mime, descriptor.name)

    def history(self, conversation: str, limit: int = 50) -> list[dict[str, object]]:
        return self.store.history(conversation, limit)

    # ---- reports, blocks, notices (logic in vigil.client.reporting) ------------------------------

    async def report(
        self,
        message: MessageEvent | str,
        reason: ReportReason,
        *,
        conversation: str | None = None,
        note: str | None = None,
        context: int = 5,
        attachments: dict[str, bytes] | None = None,
        block: bool = False,
    ) -> ReportAccepted:
        """Reports a received message (a MessageEvent, or its id with `conversation`) with up to
        `context` earlier messages; `block=True` also blocks the sender. Raises NotFoundError when the
        message is not in this device's history, ValidationError on bad arguments."""
        from vigil.client.reporting import report_from_client

        found = dict(attachments or {})
        if isinstance(message, MessageEvent):
            conversation = message.conversation
            if message.attachment is not None:
                found.setdefault(message.message_id, message.attachment.data)
            message = message.message_id
        if conversation is None:
            raise ValidationError("name the conversation of the reported message")
        return await report_from_client(
            self, message, conversation, reason, note=note, context=context, attachments=found, block=block
        )

    async def block(self, username: str) -> None:
        """The server refuses that account's messages to this one from now on."""
        await self.transport.block(username)

    async def unblock(self, username: str) -> None:
        await self.transport.unblock(username)

    async def notices(self, after: int = 0) -> list[Notice]:
        """Notices from the safety team (for example a warning) addressed to this account."""
        return (await self.transport.notices(after)).notices

    # ---- contact requests and signed safety notices (logic in vigil.client.contacts) -------------

    async def request_contact(self, username: str) -> ContactRequestView:
        """Asks `username` to connect (no text, no media). Raises PolicyViolation (blocked, restricted,
        daily limit), ConflictError (already connected or pending), NotFoundError."""
        return await contacts.request_contact(self, username)

    async def contact_requests(self) -> ContactRequestList:
        """Pending requests to this account (`incoming`) and this account's own (`outgoing`)."""
        return await contacts.list_requests(self)

    async def accept_request(self, request_id: int) -> ContactRequestView:
        return await contacts.answer_request(self, request_id, "accept")

    async def ignore_request(self, request_id: int) -> ContactRequestView:
        return await contacts.answer_request(self, request_id, "ignore")

    async def block_request(self, request_id: int) -> ContactRequestView:
        """Declines the request and blocks its sender."""
        return await contacts.answer_request(self, request_id, "block")

    async def contacts(self) -> list[str]:
        return await contacts.list_contacts(self)

    async def report_account(
        self, username: str, reason: ReportReason, *, block: bool = True
    ) -> ReportAccepted:
        """Reports an account without a message (from a contact request or a safety notice)."""
        return await contacts.report_account(self, username, reason, block)

    async def safety_notices(self, after: int = 0) -> list[SafetyNotice]:
        """Verified safety notices (forged or tampered ones are dropped; see `rejected_notices`)."""
        shown, self.rejected_notices = await contacts.fetch_safety_notices(self, after)
        return shown


def _rejected(delivery: Delivery, reason: str) -> RejectedDelivery:
    return RejectedDelivery(delivery.delivery_id, delivery.sender, delivery.sender_device, reason)


def _event_from_payload(
    payload: InnerPayload, delivery: Delivery, attachment: ReceivedAttachment | None, me: str
) -> MessageEvent:
    """A group message's event: its conversation is always `group:<id>`."""
    return MessageEvent(
        message_id=payload.message_id,
        conversation=payload.conversation,
        sender=payload.sender,
        sender_device=delivery.sender_device,
        kind=payload.kind,
        text=payload.body,
        attachment=attachment,
        sent_at_ms=payload.sent_at_ms,
        server_ts_ms=delivery.server_ts_ms,
        outgoing=payload.sender == me,
    )


def _event(opened: OpenedMessage, attachment: ReceivedAttachment | None, me: str) -> MessageEvent:
    payload, delivery = opened.payload, opened.delivery
    outgoing = payload.sender == me
    return MessageEvent(
        message_id=payload.message_id,
        conversation=payload.conversation if outgoing else payload.sender,
        sender=payload.sender,
        sender_device=delivery.sender_device,
        kind=payload.kind,
        text=payload.body,
        attachment=attachment,
        sent_at_ms=payload.sent_at_ms,
        server_ts_ms=delivery.server_ts_ms,
        outgoing=outgoing,
    )


def _record(payload: InnerPayload) -> dict[str, object]:
    return {"payload": payload.model_dump(mode="json")}


def _opened_record(opened: OpenedMessage) -> dict[str, object]:
    """Everything a later report needs: the payload with its franking key, commitment and server tag."""
    return {
        "payload": opened.payload.model_dump(mode="json"),
        "commitment": b64encode(opened.commitment),
        "franking_tag": b64encode(opened.franking_tag),
        "server_ts_ms": opened.delivery.server_ts_ms,
        "sender_device": opened.delivery.sender_device,
    }

"""`Client`: the high-level async SDK. Registration, linking devices, sending text and attachments,
receiving (HTTP catch-up or WebSocket push) with durable, exactly-once events for the app: every
delivery's event is stored before it is acknowledged and handed out until the app consumed it."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

from vigil.client import contacts
from vigil.client.blocks import BlockedSenders
from vigil.client.contacts import SafetyNotice
from vigil.client.control import open_control
from vigil.client.device import DeviceCore, HistoryEntry
from vigil.client.engine import Engine, PeerDevice
from vigil.client.events import (
    Event,
    MessageEvent,
    RejectedDelivery,
    SentMessage,
    event_from_record,
    event_record,
    message_event,
    now_ms,
    received_record,
    rejected,
    sent_record,
)
from vigil.client.groups import GroupManager
from vigil.client.reporting import report_message
from vigil.client.safety import ImageSafety
from vigil.client.store import DeviceStore
from vigil.client.transport import StaleDeviceList, Transport
from vigil.client.verification import VerificationManager
from vigil.errors import ConflictError, DecryptionError, StorageError, TamperError, ValidationError
from vigil.protocol.attachments import encrypt_attachment
from vigil.protocol.contacts import ContactRequestList, ContactRequestView
from vigil.protocol.deletion import DeletionReport
from vigil.protocol.encoding import b64encode
from vigil.protocol.ids import MessageId
from vigil.protocol.olm import DeviceAccount, PairwiseSession
from vigil.protocol.reports import AppealAccepted, AppealRequest, Notice, ReportAccepted, ReportReason
from vigil.protocol.wire import (
    MEGOLM_MESSAGE_TYPE,
    AddDeviceRequest,
    AttachmentDescriptor,
    Delivery,
    DeviceCredential,
    InnerPayload,
    MessageKind,
    RegisterAccountRequest,
    SendAccepted,
    SendRequest,
)

__all__ = ["Client"]

SEND_ATTEMPTS = 4


class Client:
    """The app's one entry point: a facade over this device's `DeviceCore` and the feature modules built on
    it (`groups`, `verification`, `safety`; contacts and reports through the methods below)."""

    def __init__(self, store: DeviceStore, transport: Transport, engine: Engine) -> None:
        self.core = DeviceCore(store, transport, engine)
        self._handed_out: list[int] = []  # inbox rows handed to the app and not yet consumed
        self.rejected_notices: list[str] = []  # why the last fetched safety notices were refused
        self.verification = VerificationManager(self.core)  # safety numbers, SAS, key-change warnings
        self.safety = ImageSafety(self.core)  # known-image matching before send/show (vigil.client.safety)
        self.groups = GroupManager(self.core, self.verification, self.safety)  # (vigil.client.groups)
        self.blocks = BlockedSenders(self.core)  # hides blocked members' group messages (vigil.client.blocks)

    @property
    def store(self) -> DeviceStore:
        return self.core.store

    @property
    def transport(self) -> Transport:
        return self.core.transport

    @property
    def engine(self) -> Engine:
        return self.core.engine

    @property
    def username(self) -> str:
        return self.core.username

    @property
    def device_id(self) -> str:
        return self.core.device_id

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
        """A clean shutdown: the events handed out so far count as consumed (see `consume`)."""
        self.consume()
        await self._release()

    async def _release(self) -> None:
        await self.transport.close()
        self.store.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *_exc: object) -> None:
        """Leaving the block by an exception is not a clean shutdown: what the app was handed and had
        not consumed is handed out again next time."""
        if exc_type is None:
            await self.close()
        else:
            await self._release()

    # ---- keys and devices --------------------------------------------------------------------------

    async def refill_keys(self) -> int:
        """Tops the server's stock of this device's one-time keys up; returns the count stored there."""
        return await self.core.refill_keys()

    async def refresh_devices(self, username: str) -> list[PeerDevice]:
        """The devices the server lists for `username` now (not this one); key changes are tracked."""
        return await self.core.refresh_devices(username)

    # ---- sending -----------------------------------------------------------------------------------

    async def send_text(self, to: str, text: str) -> SentMessage:
        payload = self.engine.build_payload(to, MessageKind.TEXT, now_ms(), body=text)
        return await self._send(payload, [])

    async def send_attachment(
        self, to: str, data: bytes, mime: str, *, name: str | None = None, caption: str = ""
    ) -> SentMessage:
        """Encrypts the blob on this device, uploads only ciphertext, and sends its key and plaintext
        hash inside the franked message. Raises ImageWithheldError (vigil.client.safety), with nothing
        uploaded or sent, when the image matches the known-image list."""
        await self.safety.check_outgoing(to, data, mime, caption=caption, name=name)  # ImageWithheldError
        encrypted = encrypt_attachment(data)
        uploaded = await self.core.with_retries(lambda: self.transport.upload_blob(encrypted.blob))
        descriptor = AttachmentDescriptor(
            blob_id=uploaded.blob_id,
            key=b64encode(encrypted.key),
            sha256=b64encode(encrypted.plaintext_sha256),
            size=encrypted.size,
            mime=mime,
            name=name,
        )
        kind = MessageKind.IMAGE if mime.startswith("image/") else MessageKind.FILE
        payload = self.engine.build_payload(to, kind, now_ms(), body=caption, attachment=descriptor)
        return await self._send(payload, [uploaded.blob_id])

    async def prepare(self, payload: InnerPayload, attachments: list[str]) -> SendRequest:
        """Encrypts `payload` for every current device of the recipient and of this account, and records
        it locally. The ratchet advanced, so state is persisted before anything goes on the network: a
        crash never reuses a message key. Raises ValidationError when there is no device to send to."""
        core = self.core
        targets = await core.targets(payload.conversation)
        self.verification.check_can_send({d.username for d in targets})
        if not targets:
            raise ValidationError("there is no other device to send to")
        await core.ensure_sessions(targets)
        request, changes = self.engine.encrypt(payload, targets, attachments)
        core.commit(
            changes,
            history=HistoryEntry(
                payload.conversation, self.username, payload.message_id, sent_record(payload)
            ),
            processed=(self.username, payload.message_id),
        )
        return request

    async def _send(self, payload: InnerPayload, attachments: list[str]) -> SentMessage:
        for _attempt in range(SEND_ATTEMPTS):
            request = await self.prepare(payload, attachments)
            try:
                accepted = await self._post(request)
            except StaleDeviceList as stale:
                for username, infos in stale.body.devices.items():
                    self.core.replace_devices(username, infos)
                continue
            self.core.keep_server_tag(accepted)
            return SentMessage(MessageId(accepted.message_id), accepted.server_ts_ms, accepted.devices)
        raise ConflictError("the recipient's devices kept changing; try again")

    async def _post(self, request: SendRequest) -> SendAccepted:
        # The same request is retried unchanged: the message id makes the retry idempotent.
        return await self.core.with_retries(lambda: self.transport.send(request))

    # ---- receiving ---------------------------------------------------------------------------------
    # Delivery to the app is durable. Each delivery is decrypted and verified, and its event is written
    # to the encrypted store in the same transaction that marks the message processed; only then is it
    # acknowledged to the server. Events wait in the store until the app has consumed them (see
    # `consume`), so a crash, a lost connection or an exception at any point loses none and a restart
    # hands out each unconsumed one again; a (sender, message id) is handed out at most once when
    # consumed, however often the server redelivers it.

    async def fetch(self) -> list[Event]:
        """Catches up over HTTP and returns every event the app has not consumed yet, oldest first: those
        left from before (a crash, or a call that raised) and then every queued delivery, decrypted,
        verified, stored and acknowledged.

        Calling `fetch`, `listen`, `consume` or `close` afterwards marks the events returned here as
        consumed. Events returned but not consumed (the app crashed while handling them, or left
        `async with` by an exception) are returned again after a restart. If this raises (server or
        network down mid-way), nothing is lost: the events already decrypted are returned by the next
        call."""
        self.consume()
        await self.verification.resend_unsent()  # a SAS answer that failed to go out last time
        while True:
            # Acknowledged entries are deleted, so each round simply asks for the oldest pending ones.
            batch = await self.transport.fetch()
            if not batch.messages:
                break
            await self.transport.ack(await self._handle(batch.messages))
            if not batch.more:
                break
        pending = self._unconsumed()
        self._handed_out = [seq for seq, _event in pending]
        return [event for _seq, event in pending]

    async def listen(self) -> AsyncIterator[Event]:
        """Yields the events not consumed yet (left from before, see `fetch`), then each event pushed
        over the WebSocket, stored before it is acknowledged. An event counts as consumed once the app
        asks for the next one (or calls `fetch`, `listen`, `consume` or `close`): one the app was
        handling when it crashed is handed out again after a restart. Ends when the server closes the
        connection; raises if the connection fails, with nothing lost."""
        self.consume()
        for seq, event in self._unconsumed():
            self._handed_out.append(seq)
            yield event
            self.consume()
        async for deliveries, ack in self.transport.stream():
            await ack(await self._handle(deliveries))
            for seq, event in self._unconsumed():
                self._handed_out.append(seq)
                yield event
                self.consume()

    def consume(self) -> None:
        """Marks every event handed out so far (by `fetch` or `listen`) as consumed by the app: it is
        never handed out again, not even after a restart. For an app that must not lose its place between
        calls (e.g. one that may be killed while it idles), call it as soon as it has durably done what it
        does with them (shown, stored)."""
        if self._handed_out:
            self.store.mark_consumed(self._handed_out)
            self._handed_out = []

    def _unconsumed(self) -> list[tuple[int, Event]]:
        return [(seq, event_from_record(record)) for seq, record in self.store.unconsumed_events()]

    async def _handle(self, deliveries: list[Delivery]) -> list[int]:
        """Opens each delivery and keeps its event for the app; returns the delivery ids to acknowledge
        (all of them: a delivery that fails verification is dropped with a RejectedDelivery event)."""
        handled: list[int] = []
        used_pre_key = False
        for delivery in deliveries:
            if not self.store.is_processed(delivery.sender, delivery.message_id):
                event = await self._open(delivery)
                if isinstance(event, RejectedDelivery):
                    # Keyed by the queue entry as well as the message id: a forgery must not take the
                    # key of the genuine message it imitates.
                    key = f"rejected:{delivery.delivery_id}:{delivery.message_id}"
                    self.store.keep_event(delivery.sender, key, event_record(event))
                elif event is not None:
                    # A message's event was kept with its state (`DeviceCore.commit`, under the same
                    # key: this is a no-op); a verification step changed no message state.
                    self.store.keep_event(delivery.sender, delivery.message_id, event_record(event))
            # Otherwise a redelivery of something already handled (its event is kept): ack it only.
            handled.append(delivery.delivery_id)
            used_pre_key |= delivery.type == 0
        if used_pre_key:
            await self.core.refill_keys()
        return handled

    async def _open(self, delivery: Delivery) -> Event | None:
        core = self.core
        sender_device = await core.sender_device(delivery.sender, delivery.sender_device)
        if sender_device is None:
            return rejected(delivery, "the sender device is unknown")
        if delivery.type == MEGOLM_MESSAGE_TYPE:
            if await self.blocks.hides(delivery.sender):
                with self.store.transaction():
                    self.store.mark_processed(delivery.sender, delivery.message_id)
                return None
            return await self.groups.open(delivery)
        if delivery.kind is MessageKind.CONTROL:
            return await open_control(core, self.groups, self.verification, delivery, sender_device)
        try:
            opened = self.engine.open(delivery, sender_device, self.store.pickle_key)
            attachment = await core.fetch_attachment(opened.payload.attachment)
        except (DecryptionError, TamperError) as error:
            return rejected(delivery, error.detail)
        changes = self.engine.accept(opened)
        event = message_event(opened.payload, delivery, attachment, self.username)
        withheld = await self.safety.check_incoming(  # a known image is never shown
            opened.payload, delivery, attachment, conversation=event.conversation
        )
        shown = event if withheld is None else withheld
        core.commit(
            changes,
            history=HistoryEntry(
                event.conversation,
                delivery.sender,
                delivery.message_id,
                received_record(opened.payload, delivery, opened.commitment, opened.franking_tag),
            ),
            processed=(delivery.sender, delivery.message_id),
            event=shown,
        )
        return shown

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
        found = dict(attachments or {})
        if isinstance(message, MessageEvent):
            conversation = message.conversation
            if message.attachment is not None:
                found.setdefault(message.message_id, message.attachment.data)
            message = message.message_id
        if conversation is None:
            raise ValidationError("name the conversation of the reported message")
        accepted = await report_message(
            self.core,
            message,
            conversation,
            reason,
            note=note,
            context=context,
            attachments=found,
            block=block,
        )
        if accepted.blocked:
            self.blocks.add(accepted.reported)
        return accepted

    async def delete_device(self, device_id: str) -> DeletionReport:
        """Deletes one of this account's devices (not the only one: delete the account then); what the
        server removed is in the report. Raises NotFoundError, ConflictError."""
        return await self.transport.delete_device(device_id)

    async def delete_account(self) -> DeletionReport:
        """Deletes this account on the server: its devices, graph and (unless a safety case or a legal
        hold needs it) its metadata. The report says what went and what was kept, why and until when.
        This device's credential stops working; the local store is the caller's to remove."""
        return await self.transport.delete_account()

    async def block(self, username: str) -> None:
        """The server refuses that account's messages to this one from now on, and this device hides
        their messages in shared groups (`vigil.client.blocks`)."""
        await self.transport.block(username)
        self.blocks.add(username)

    async def unblock(self, username: str) -> None:
        """Their new messages are shown again; group messages hidden meanwhile stay hidden."""
        await self.transport.unblock(username)
        self.blocks.remove(username)

    async def appeal(self, reason: str) -> AppealAccepted:
        """Appeals the latest action taken on this account (once per action; a suspended account can).
        Raises NotFoundError (nothing to appeal), ConflictError (already appealed), ValidationError."""
        return await self.transport.appeal(AppealRequest(reason=reason))

    async def notices(self, after: int = 0) -> list[Notice]:
        """Notices from the safety team (for example a warning) addressed to this account."""
        return (await self.transport.notices(after)).notices

    # ---- contact requests and signed safety notices (logic in vigil.client.contacts) -------------

    async def request_contact(self, username: str) -> ContactRequestView:
        """Asks `username` to connect (no text, no media). Raises PolicyViolation (blocked, restricted,
        daily limit), ConflictError (already connected or pending), NotFoundError."""
        return await contacts.request_contact(self.core, username)

    async def contact_requests(self) -> ContactRequestList:
        """Pending requests to this account (`incoming`) and this account's own (`outgoing`)."""
        return await contacts.list_requests(self.core)

    async def accept_request(self, request_id: int) -> ContactRequestView:
        return await contacts.answer_request(self.core, request_id, "accept")

    async def ignore_request(self, request_id: int) -> ContactRequestView:
        return await contacts.answer_request(self.core, request_id, "ignore")

    async def block_request(self, request_id: int) -> ContactRequestView:
        """Declines the request and blocks its sender."""
        answered = await contacts.answer_request(self.core, request_id, "block")
        self.blocks.add(answered.requester)
        return answered

    async def contacts(self) -> list[str]:
        return await contacts.list_contacts(self.core)

    async def report_account(
        self, username: str, reason: ReportReason, *, block: bool = True
    ) -> ReportAccepted:
        """Reports an account without a message (from a contact request or a safety notice)."""
        accepted = await contacts.report_account(self.core, username, reason, block)
        if accepted.blocked:
            self.blocks.add(username)
        return accepted

    async def safety_notices(self, after: int = 0) -> list[SafetyNotice]:
        """Verified safety notices (forged or tampered ones are dropped; see `rejected_notices`)."""
        shown, self.rejected_notices = await contacts.fetch_safety_notices(self.core, after)
        return shown

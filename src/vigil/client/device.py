"""`DeviceCore`: this device's store, transport and engine, and the steps every feature shares (persisting
engine changes, device lists, Olm sessions, retries, attachments, one-time keys, control messages).

Feature modules (`groups`, `verification`, `safety`, `contacts`, `reporting`, `control`) are built on a
core and never on `Client`. Whoever wants to know when a device list changed (key-change warnings)
registers a hook with `watch_devices`; the core calls it with every list the server gives.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import httpx
from pydantic import BaseModel

from vigil.client.engine import Changes, Engine, PeerDevice, device_from_info
from vigil.client.events import Event, MessageEvent, ReceivedAttachment, event_record, now_ms
from vigil.client.group_store import GroupStore
from vigil.client.store import DeviceStore, StoredDevice, StoredSession
from vigil.client.transport import Transport
from vigil.protocol.attachments import decrypt_attachment
from vigil.protocol.encoding import b64decode, b64encode
from vigil.protocol.group_wire import ToDeviceCiphertext, ToDeviceRequest
from vigil.protocol.wire import (
    MAX_CIPHERTEXTS_PER_SEND,
    AttachmentDescriptor,
    ClaimKeysRequest,
    DeviceInfo,
    SendAccepted,
    UploadKeysRequest,
)

__all__ = [
    "NETWORK_RETRIES",
    "ONE_TIME_KEY_TARGET",
    "REFILL_BELOW",
    "DeviceCore",
    "DeviceListHook",
    "HistoryEntry",
]

ONE_TIME_KEY_TARGET = 50
REFILL_BELOW = 20
NETWORK_RETRIES = 3
T = TypeVar("T")
DeviceListHook = Callable[[str, list[DeviceInfo]], object]
"""Called with a username and the other devices the server now lists for it (self-signatures checked)."""


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    conversation: str
    sender: str
    message_id: str
    record: dict[str, object]


class DeviceCore:
    def __init__(self, store: DeviceStore, transport: Transport, engine: Engine) -> None:
        self.store = store
        self.transport = transport
        self.engine = engine
        self.tables = GroupStore(store)  # group sessions, verification records, device keys seen
        self._device_hooks: list[DeviceListHook] = []

    @property
    def username(self) -> str:
        return self.engine.username

    @property
    def device_id(self) -> str:
        return self.engine.device_id

    def watch_devices(self, hook: DeviceListHook) -> None:
        self._device_hooks.append(hook)

    # ---- persistence -----------------------------------------------------------------------------

    def keep_server_tag(self, accepted: SendAccepted) -> None:
        """Keeps the server's tag from a send's answer with this device's record of the message."""
        if accepted.franking_tag is not None:
            self.store.keep_server_tag(
                self.username, accepted.message_id, accepted.franking_tag, accepted.server_ts_ms
            )

    def commit(
        self,
        changes: Changes,
        *,
        history: HistoryEntry | None = None,
        processed: tuple[str, str] | None = None,
        event: Event | None = None,
        devices: Sequence[PeerDevice] = (),
    ) -> None:
        """Writes what an engine call changed, with the history record, processed (sender, message id),
        the event for the app (kept under the processed id until the app consumed it) and devices that
        belong with it, in one transaction: a crash leaves all or none of them, so a message marked
        processed always has its event waiting for the app."""
        if event is not None and processed is None:
            raise AssertionError("an event is kept under the (sender, message id) it was processed as")
        with self.store.transaction():
            self._write(changes)
            for device in devices:
                self._save_device(device)
            if history is not None:
                entry = history
                self.store.add_history(entry.conversation, entry.sender, entry.message_id, entry.record)
            if processed is not None:
                self.store.mark_processed(*processed)
                if event is not None:
                    self.store.keep_event(*processed, event_record(event))
                if isinstance(event, MessageEvent) and event.attachment is not None and not event.outgoing:
                    self.store.keep_attachment(*processed, event.attachment.data)

    def _write(self, changes: Changes) -> None:
        key = self.store.pickle_key
        if changes.account:
            self.store.set_secret("account", self.engine.account.pickle(key))
        now = now_ms()
        for change in changes.sessions:
            self.store.save_session(
                StoredSession(change.session.session_id, change.peer_device, change.session.pickle(key), now)
            )
        for group_id, record in changes.outbound.items():
            self.tables.save_outbound(group_id, record)
        for inbound in changes.inbound:
            self.tables.save_inbound(inbound)
        for session_id, index, message_id in changes.seen:
            self.tables.mark_seen(session_id, index, message_id)

    async def refill_keys(self) -> int:
        """Tops the server's stock of this device's one-time keys up; returns the count stored there."""
        counts = await self.transport.key_counts()
        if counts.one_time_keys >= REFILL_BELOW and counts.fallback_key:
            return counts.one_time_keys
        account = self.engine.account
        fresh = account.new_one_time_keys(max(0, ONE_TIME_KEY_TARGET - counts.one_time_keys))
        fallback = None if counts.fallback_key else account.new_fallback_key()
        self.commit(Changes(account=True))
        request = UploadKeysRequest(one_time_keys=fresh, fallback_key=fallback)
        stored = await self.transport.upload_keys(request)
        account.mark_published()
        self.commit(Changes(account=True))
        return stored.one_time_keys

    # ---- devices and sessions --------------------------------------------------------------------

    def known_devices(self, username: str) -> list[PeerDevice]:
        stored = self.store.devices_of(username)
        return [PeerDevice(d.username, d.device_id, d.curve25519, d.ed25519) for d in stored]

    async def refresh_devices(self, username: str) -> list[PeerDevice]:
        listing = await self.transport.devices(username)
        self.replace_devices(username, listing.devices)
        return self.known_devices(username)

    def replace_devices(self, username: str, infos: list[DeviceInfo]) -> list[PeerDevice]:
        """Takes the server's current device list for `username` (raises TamperError on a device whose
        keys are not self-signed), tells the watchers, and returns the devices other than this one."""
        others = [info for info in infos if info.device_id != self.device_id]
        devices = [device_from_info(username, info) for info in others]
        for hook in self._device_hooks:
            hook(username, others)
        with self.store.transaction():
            current = {d.device_id for d in devices}
            for old in self.store.devices_of(username):
                if old.device_id not in current:
                    self.store.remove_device(username, old.device_id)
            for device in devices:
                self._save_device(device)
        return devices

    def _save_device(self, device: PeerDevice) -> None:
        stored = StoredDevice(device.username, device.device_id, device.curve25519, device.ed25519)
        self.store.save_device(stored, now_ms())

    async def targets(self, to: str) -> list[PeerDevice]:
        """Every device of `to` and every other device of this account (the recipient's fetched once)."""
        names = [to] if to == self.username else [to, self.username]
        targets: list[PeerDevice] = []
        for name in names:
            known = self.known_devices(name)
            if not known and name != self.username:
                known = await self.refresh_devices(name)
            targets.extend(known)
        return targets

    async def sender_device(self, username: str, device_id: str) -> PeerDevice | None:
        """The device as known, else as the server lists it now; None if it is not there either."""
        for device in self.known_devices(username):
            if device.device_id == device_id:
                return device
        for device in await self.refresh_devices(username):
            if device.device_id == device_id:
                return device
        return None

    async def ensure_sessions(self, targets: list[PeerDevice]) -> None:
        """Claims one-time keys and opens an Olm session with every target that has none yet."""
        missing = self.engine.devices_without_session(targets)
        for username in sorted({d.username for d in missing}):
            ids = [d.device_id for d in missing if d.username == username]
            claimed = await self.transport.claim_keys(ClaimKeysRequest(username=username, device_ids=ids))
            started, changes = self.engine.start_sessions(username, claimed.devices)
            self.commit(changes, devices=started)

    async def send_to_devices(
        self, conversation: str, devices: list[PeerDevice], messages: Sequence[BaseModel]
    ) -> None:
        """Olm-encrypts each control message for its device, persists the ratchets, then posts them in
        as few `/v1/to-device` requests as allowed."""
        if not devices:
            return
        await self.ensure_sessions(devices)
        ciphertexts = []
        changes = Changes()
        for device, message in zip(devices, messages, strict=True):
            parts, changed = self.engine.encrypt_for(device.device_id, message.model_dump_json().encode())
            changes = changes.merge(changed)
            ciphertexts.append(
                ToDeviceCiphertext(
                    username=device.username,
                    device_id=device.device_id,
                    type=parts.message_type,  # type: ignore[arg-type]
                    body=b64encode(parts.ciphertext),
                )
            )
        self.commit(changes)
        for start in range(0, len(ciphertexts), MAX_CIPHERTEXTS_PER_SEND):
            request = ToDeviceRequest(
                id=str(uuid.uuid4()),
                conversation=conversation,
                messages=ciphertexts[start : start + MAX_CIPHERTEXTS_PER_SEND],
            )
            await self.with_retries(functools.partial(self.transport.to_device, request))

    # ---- network -----------------------------------------------------------------------------------

    async def with_retries(self, call: Callable[[], Awaitable[T]]) -> T:
        """Retries a call that failed in transit (the server's answers are not retried)."""
        for attempt in range(NETWORK_RETRIES):
            try:
                return await call()
            except httpx.TransportError:
                if attempt == NETWORK_RETRIES - 1:
                    raise
                await asyncio.sleep(0.2 * 2**attempt)
        raise AssertionError("unreachable")

    async def fetch_attachment(self, descriptor: AttachmentDescriptor | None) -> ReceivedAttachment | None:
        """Raises TamperError if the blob is not what the sender committed to."""
        if descriptor is None:
            return None
        blob = await self.with_retries(lambda: self.transport.download_blob(descriptor.blob_id))
        data = decrypt_attachment(
            blob,
            b64decode(descriptor.key, field="attachment key"),
            b64decode(descriptor.sha256, field="attachment hash"),
            descriptor.size,
        )
        return ReceivedAttachment(data, descriptor.mime, descriptor.name)

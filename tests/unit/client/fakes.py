"""An in-memory stand-in for the server, and a fake `Transport` per device that talks to it.

The crypto is real (vodozemac in every engine); only HTTP is replaced. The fake relays what a real server
relays (device lists, one-time keys, queues, groups, blobs) and records what the client asked for, so
tests can assert on requests as well as on outcomes. Features are built on a `DeviceCore` exactly as
`Client` builds them.
"""

from __future__ import annotations

import base64
import itertools
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigil.client.client import Client
from vigil.client.device import DeviceCore
from vigil.client.engine import Engine
from vigil.client.store import DeviceStore
from vigil.errors import ConflictError, NotFoundError
from vigil.protocol.contacts import (
    AccountReportRequest,
    ContactList,
    ContactRequestList,
    ContactRequestView,
    NoticeKey,
    SignedNotice,
    SignedNoticeList,
)
from vigil.protocol.group_wire import (
    AddMemberRequest,
    CreateGroupRequest,
    GroupDevices,
    GroupInfo,
    GroupMember,
    GroupRole,
    GroupSendRequest,
    ToDeviceAccepted,
    ToDeviceRequest,
)
from vigil.protocol.olm import DeviceAccount
from vigil.protocol.reports import BlockList, ReportAccepted, ReportRequest
from vigil.protocol.vouchers import (
    HashListAuthorityKey,
    HashListHead,
    ManifestBatch,
    VoucherAccepted,
    VoucherSubmission,
    authority_fingerprint,
)
from vigil.protocol.wire import (
    MEGOLM_MESSAGE_TYPE,
    BlobUploaded,
    ClaimedDevice,
    ClaimedKeys,
    ClaimKeysRequest,
    Delivery,
    DeviceInfo,
    DeviceList,
    FetchResponse,
    KeyCounts,
    MessageKind,
    SendAccepted,
    SendRequest,
    SignedKey,
    UploadKeysRequest,
)

PASSPHRASE = "unit test passphrase"
TAG = base64.b64encode(b"t" * 32).decode()  # the server's franking tag is not checked on the client
NO_COMMITMENT = base64.b64encode(bytes(32)).decode()


@dataclass
class _Device:
    username: str
    device_id: str
    account: DeviceAccount
    one_time_keys: list[SignedKey] = field(default_factory=list)
    fallback: SignedKey | None = None
    queue: list[Delivery] = field(default_factory=list)

    def info(self) -> DeviceInfo:
        return DeviceInfo(device_id=self.device_id, keys=self.account.device_keys())


@dataclass
class FakeServer:
    devices: dict[str, list[_Device]] = field(default_factory=dict)
    groups: dict[str, dict[str, GroupRole]] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    calls: list[tuple[str, Any]] = field(default_factory=list)  # (method, argument) of every request
    signed_notices: list[SignedNotice] = field(default_factory=list)
    notice_public_key: bytes = b"k" * 32
    hashlist_head: HashListHead | None = None
    hashlist_authority: str | None = None  # the authority key the server names, if any
    manifests: list[str] = field(default_factory=list)
    vouchers: list[VoucherSubmission] = field(default_factory=list)
    reports: list[ReportRequest | AccountReportRequest] = field(default_factory=list)
    blocked: dict[str, set[str]] = field(default_factory=dict)  # blocker -> blocked usernames
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def device(self, username: str, device_id: str) -> _Device:
        return next(d for d in self.devices[username] if d.device_id == device_id)

    def deliver(self, to: _Device, **fields: Any) -> None:
        to.queue.append(Delivery(delivery_id=next(self._ids), franking_tag=TAG, server_ts_ms=7, **fields))


class FakeTransport:
    """Implements the `Transport` methods the client calls, against a `FakeServer`."""

    def __init__(self, server: FakeServer, username: str, device_id: str) -> None:
        self.server = server
        self.username = username
        self.device_id = device_id
        self.server_url = "http://fake"

    @property
    def _me(self) -> _Device:
        return self.server.device(self.username, self.device_id)

    def _log(self, method: str, argument: Any = None) -> None:
        self.server.calls.append((method, argument))

    async def close(self) -> None:
        return None

    # ---- keys and devices ----------------------------------------------------------------------------

    async def key_counts(self) -> KeyCounts:
        self._log("key_counts")
        me = self._me
        return KeyCounts(one_time_keys=len(me.one_time_keys), fallback_key=me.fallback is not None)

    async def upload_keys(self, request: UploadKeysRequest) -> KeyCounts:
        self._log("upload_keys", request)
        self._me.one_time_keys.extend(request.one_time_keys)
        if request.fallback_key is not None:
            self._me.fallback = request.fallback_key
        return await self.key_counts()

    async def devices(self, username: str) -> DeviceList:
        self._log("devices", username)
        listed = self.server.devices.get(username, [])
        return DeviceList(username=username, devices=[d.info() for d in listed])

    async def claim_keys(self, request: ClaimKeysRequest) -> ClaimedKeys:
        self._log("claim_keys", request)
        claimed = []
        for device in self.server.devices[request.username]:
            if request.device_ids is not None and device.device_id not in request.device_ids:
                continue
            fallback = not device.one_time_keys
            key = device.fallback if fallback else device.one_time_keys.pop(0)
            claimed.append(
                ClaimedDevice(
                    device_id=device.device_id,
                    keys=device.account.device_keys(),
                    one_time_key=key,
                    is_fallback=fallback,
                )
            )
        return ClaimedKeys(username=request.username, devices=claimed)

    # ---- messages --------------------------------------------------------------------------------------

    async def send(self, request: SendRequest) -> SendAccepted:
        self._log("send", request)
        by_id = {d.device_id: d for name in {request.to, self.username} for d in self.server.devices[name]}
        for ciphertext in request.ciphertexts:
            self.server.deliver(
                by_id[ciphertext.device_id],
                message_id=request.id,
                sender=self.username,
                sender_device=self.device_id,
                conversation=request.to,
                kind=request.kind,
                commitment=request.commitment,
                type=ciphertext.type,
                body=ciphertext.body,
            )
        return SendAccepted(message_id=request.id, server_ts_ms=7, devices=len(request.ciphertexts))

    async def fetch(self, after: int = 0, limit: int = 100) -> FetchResponse:
        self._log("fetch")
        return FetchResponse(messages=list(self._me.queue[:limit]), more=len(self._me.queue) > limit)

    async def ack(self, delivery_ids: list[int]) -> None:
        self._log("ack", delivery_ids)
        self._me.queue = [d for d in self._me.queue if d.delivery_id not in delivery_ids]

    async def upload_blob(self, data: bytes) -> BlobUploaded:
        self._log("upload_blob", len(data))
        blob_id = uuid.uuid4().hex
        self.server.blobs[blob_id] = data
        return BlobUploaded(blob_id=blob_id, size=len(data))

    async def download_blob(self, blob_id: str) -> bytes:
        self._log("download_blob", blob_id)
        if blob_id not in self.server.blobs:
            raise NotFoundError("no such blob")
        return self.server.blobs[blob_id]

    async def report(self, request: ReportRequest) -> ReportAccepted:
        self._log("report", request)
        self.server.reports.append(request)
        reported = request.messages[0].payload["sender"]
        return ReportAccepted(
            report_id=len(self.server.reports),
            case_id=1,
            reported=reported,
            verified=[True] * len(request.messages),
            blocked=request.block,
        )

    # ---- groups and control messages ---------------------------------------------------------------

    async def create_group(self, request: CreateGroupRequest) -> GroupInfo:
        self._log("create_group", request)
        group_id = uuid.uuid4().hex
        self.server.groups[group_id] = {self.username: GroupRole.ADMIN} | {
            m: GroupRole.MEMBER for m in request.members
        }
        return await self.group_info(group_id)

    async def group_info(self, group_id: str) -> GroupInfo:
        members = self.server.groups[group_id]
        return GroupInfo(
            group_id=group_id,
            members=[GroupMember(username=u, role=r, joined_at_ms=1) for u, r in members.items()],
        )

    async def add_group_member(self, group_id: str, request: AddMemberRequest) -> GroupInfo:
        self._log("add_group_member", request)
        self.server.groups[group_id][request.username] = request.role
        return await self.group_info(group_id)

    async def remove_group_member(self, group_id: str, username: str) -> GroupInfo:
        self._log("remove_group_member", username)
        del self.server.groups[group_id][username]
        return await self.group_info(group_id)

    async def group_devices(self, group_id: str) -> GroupDevices:
        self._log("group_devices", group_id)
        members = self.server.groups[group_id]
        return GroupDevices(
            group_id=group_id, devices={u: [d.info() for d in self.server.devices[u]] for u in members}
        )

    async def send_group(self, group_id: str, request: GroupSendRequest) -> SendAccepted:
        self._log("send_group", request)
        current = {
            d.device_id
            for u in self.server.groups[group_id]
            for d in self.server.devices[u]
            if d.device_id != self.device_id
        }
        if set(request.devices) != current:
            raise ConflictError("stale devices (the fake does not build the 409 body)")
        for username in self.server.groups[group_id]:
            for device in self.server.devices[username]:
                if device.device_id in current:
                    self.server.deliver(
                        device,
                        message_id=request.id,
                        sender=self.username,
                        sender_device=self.device_id,
                        conversation=f"group:{group_id}",
                        kind=request.kind,
                        commitment=request.commitment,
                        type=MEGOLM_MESSAGE_TYPE,
                        body=request.body,
                    )
        return SendAccepted(message_id=request.id, server_ts_ms=7, devices=len(current))

    async def to_device(self, request: ToDeviceRequest) -> ToDeviceAccepted:
        self._log("to_device", request)
        for message in request.messages:
            self.server.deliver(
                self.server.device(message.username, message.device_id),
                message_id=request.id,
                sender=self.username,
                sender_device=self.device_id,
                conversation=request.conversation,
                kind=MessageKind.CONTROL,
                commitment=NO_COMMITMENT,
                type=message.type,
                body=message.body,
            )
        return ToDeviceAccepted(message_id=request.id, devices=len(request.messages))

    # ---- contacts, notices, hash list, vouchers ----------------------------------------------------

    async def request_contact(self, username: str) -> ContactRequestView:
        self._log("request_contact", username)
        return ContactRequestView(
            id=1, requester=self.username, recipient=username, state="pending", created_at_ms=1
        )

    async def contact_requests(self) -> ContactRequestList:
        self._log("contact_requests")
        return ContactRequestList(incoming=[], outgoing=[])

    async def answer_contact_request(self, request_id: int, answer: str) -> ContactRequestView:
        self._log("answer_contact_request", (request_id, answer))
        state = {"accept": "accepted", "ignore": "ignored", "block": "blocked"}[answer]
        return ContactRequestView(
            id=request_id, requester="someone", recipient=self.username, state=state, created_at_ms=1
        )

    async def blocks(self) -> BlockList:
        # Not logged: the device reads it once per session, beside the calls the tests look at.
        return BlockList(blocked=sorted(self.server.blocked.get(self.username, set())))

    async def contacts(self) -> ContactList:
        self._log("contacts")
        return ContactList(contacts=["bob"])

    async def report_account(self, request: AccountReportRequest) -> ReportAccepted:
        self._log("report_account", request)
        self.server.reports.append(request)
        return ReportAccepted(
            report_id=len(self.server.reports),
            case_id=1,
            reported=request.username,
            verified=[],
            blocked=request.block,
        )

    async def notice_key(self) -> NoticeKey:
        self._log("notice_key")
        return NoticeKey(public_key=base64.b64encode(self.server.notice_public_key).decode())

    async def safety_notices(self, after: int = 0) -> SignedNoticeList:
        self._log("safety_notices", after)
        return SignedNoticeList(notices=list(self.server.signed_notices))

    async def hashlist_authority(self) -> HashListAuthorityKey:
        self._log("hashlist_authority")
        if self.server.hashlist_authority is None:
            raise NotFoundError("this server names no hash-list authority key")
        key = self.server.hashlist_authority
        return HashListAuthorityKey(key=key, fingerprint=authority_fingerprint(key))

    async def hashlist_head(self) -> HashListHead:
        self._log("hashlist_head")
        if self.server.hashlist_head is None:
            raise NotFoundError("no list published")
        return self.server.hashlist_head

    async def hashlist_manifests(self, since: int) -> ManifestBatch:
        self._log("hashlist_manifests", since)
        assert self.server.hashlist_head is not None
        return ManifestBatch(manifests=self.server.manifests[since:], head=self.server.hashlist_head)

    async def submit_voucher(self, submission: VoucherSubmission) -> VoucherAccepted:
        self._log("submit_voucher", submission)
        self.server.vouchers.append(submission)
        return VoucherAccepted(voucher_id=submission.voucher_id)


async def new_device(server: FakeServer, tmp_path: Path, username: str, device_id: str = "") -> DeviceCore:
    """A registered device with its keys published on `server`, as `Client.register` leaves it."""
    device_id = device_id or f"{username.upper()}1"
    account = DeviceAccount()
    server.devices.setdefault(username, []).append(_Device(username, device_id, account))
    store = DeviceStore(tmp_path / f"{username}-{device_id}.db", PASSPHRASE)
    core = DeviceCore(store, FakeTransport(server, username, device_id), Engine(account, username, device_id))  # type: ignore[arg-type]
    await core.refill_keys()
    return core


def new_client(server: FakeServer, tmp_path: Path, username: str, device_id: str = "") -> Client:
    """A `Client` over a fake transport (the facade and its features exactly as in production)."""
    device_id = device_id or f"{username.upper()}1"
    account = DeviceAccount()
    server.devices.setdefault(username, []).append(_Device(username, device_id, account))
    store = DeviceStore(tmp_path / f"{username}-{device_id}.db", PASSPHRASE)
    return Client(store, FakeTransport(server, username, device_id), Engine(account, username, device_id))  # type: ignore[arg-type]


async def start(client: Client) -> Client:
    await client.refill_keys()
    return client

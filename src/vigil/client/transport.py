"""HTTP (httpx) and WebSocket (websockets) transport. Turns error answers back into `vigil.errors`.

The one place that knows the server's paths: every endpoint the client uses is a typed method here."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Literal, TypeVar

import httpx
import pydantic
import websockets

from vigil.errors import (
    AuthenticationError,
    ConflictError,
    GoneError,
    NotFoundError,
    PermissionDenied,
    PolicyViolation,
    ProtocolError,
    ValidationError,
    VigilError,
)
from vigil.protocol.contacts import (
    AccountReportRequest,
    ContactList,
    ContactRequestCreate,
    ContactRequestList,
    ContactRequestView,
    NoticeKey,
    SignedNoticeList,
)
from vigil.protocol.deletion import DeletionReport
from vigil.protocol.group_wire import (
    AddMemberRequest,
    CreateGroupRequest,
    GroupDevices,
    GroupInfo,
    GroupList,
    GroupSendRequest,
    InviteLink,
    JoinGroupRequest,
    ToDeviceAccepted,
    ToDeviceRequest,
)
from vigil.protocol.reports import (
    AppealAccepted,
    AppealRequest,
    BlockList,
    BlockRequest,
    NoticeList,
    ReportAccepted,
    ReportRequest,
)
from vigil.protocol.vouchers import (
    HashListAuthorityKey,
    HashListHead,
    ManifestBatch,
    VoucherAccepted,
    VoucherSubmission,
)
from vigil.protocol.wire import (
    AckRequest,
    AddDeviceRequest,
    BlobUploaded,
    ClaimedKeys,
    ClaimKeysRequest,
    Delivery,
    DeviceCredential,
    DeviceList,
    FetchResponse,
    KeyCounts,
    RegisterAccountRequest,
    SendAccepted,
    SendRequest,
    StaleDevices,
    UploadKeysRequest,
)

__all__ = ["ContactAnswer", "ServerError", "StaleDeviceList", "StreamAcker", "Transport"]

Model = TypeVar("Model", bound=pydantic.BaseModel)
ContactAnswer = Literal["accept", "ignore", "block"]


class _Empty(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")


class ServerError(VigilError):
    """The server answered with an error the caller did not expect."""

    code = "server_error"

    def __init__(self, status: int, code: str, detail: Any) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.error_code = code


class StaleDeviceList(ConflictError):
    code = "stale_devices"

    def __init__(self, body: StaleDevices) -> None:
        super().__init__(body.detail)
        self.body = body


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        body = {"error": "http_error", "detail": response.text[:200]}
    code, detail = str(body.get("error", "http_error")), body.get("detail")
    if response.status_code == 409 and code == "stale_devices":
        raise StaleDeviceList(StaleDevices.model_validate(body))
    mapping: dict[int, type[VigilError]] = {
        400: ValidationError,
        401: AuthenticationError,
        404: NotFoundError,
        409: ConflictError,
        410: GoneError,
        422: ValidationError,
    }
    if response.status_code == 403:
        raise (PolicyViolation if code == "policy_violation" else PermissionDenied)(str(detail))
    error_type = mapping.get(response.status_code)
    if error_type is not None:
        raise error_type(f"{code}: {detail}")
    raise ServerError(response.status_code, code, detail)


class Transport:
    def __init__(self, server_url: str, credential: str | None = None, timeout: float = 30.0) -> None:
        self.server_url = server_url.rstrip("/")
        self._credential = credential
        self._http = httpx.AsyncClient(base_url=self.server_url, timeout=timeout)

    def set_credential(self, credential: str) -> None:
        self._credential = credential

    def _headers(self) -> dict[str, str]:
        if self._credential is None:
            raise AuthenticationError("this device is not registered yet")
        return {"Authorization": f"Bearer {self._credential}"}

    async def close(self) -> None:
        await self._http.aclose()

    async def _post(
        self, path: str, body: pydantic.BaseModel, model: type[Model], *, auth: bool = True
    ) -> Model:
        response = await self._http.post(
            path,
            content=body.model_dump_json(exclude_none=True),
            headers={"Content-Type": "application/json", **(self._headers() if auth else {})},
        )
        _raise_for(response)
        return model.model_validate(response.json())

    async def _get(self, path: str, model: type[Model], params: dict[str, Any] | None = None) -> Model:
        response = await self._http.get(path, headers=self._headers(), params=params)
        _raise_for(response)
        return model.model_validate(response.json())

    async def register(self, request: RegisterAccountRequest) -> DeviceCredential:
        return await self._post("/v1/accounts", request, DeviceCredential, auth=False)

    async def add_device(self, request: AddDeviceRequest) -> DeviceCredential:
        return await self._post("/v1/devices", request, DeviceCredential)

    async def delete_device(self, device_id: str) -> DeletionReport:
        response = await self._http.delete(f"/v1/devices/{device_id}", headers=self._headers())
        _raise_for(response)
        return DeletionReport.model_validate(response.json())

    async def delete_account(self) -> DeletionReport:
        response = await self._http.delete("/v1/accounts/me", headers=self._headers())
        _raise_for(response)
        return DeletionReport.model_validate(response.json())

    async def upload_keys(self, request: UploadKeysRequest) -> KeyCounts:
        return await self._post("/v1/keys", request, KeyCounts)

    async def key_counts(self) -> KeyCounts:
        return await self._get("/v1/keys/count", KeyCounts)

    async def claim_keys(self, request: ClaimKeysRequest) -> ClaimedKeys:
        return await self._post("/v1/keys/claim", request, ClaimedKeys)

    async def devices(self, username: str) -> DeviceList:
        return await self._get(f"/v1/users/{username}/devices", DeviceList)

    async def send(self, request: SendRequest) -> SendAccepted:
        return await self._post("/v1/messages", request, SendAccepted)

    async def fetch(self, after: int = 0, limit: int = 100) -> FetchResponse:
        return await self._get("/v1/messages", FetchResponse, {"after": after, "limit": limit})

    async def ack(self, delivery_ids: list[int]) -> None:
        response = await self._http.post(
            "/v1/messages/ack",
            content=AckRequest(delivery_ids=delivery_ids).model_dump_json(),
            headers={"Content-Type": "application/json", **self._headers()},
        )
        _raise_for(response)

    async def upload_blob(self, data: bytes) -> BlobUploaded:
        response = await self._http.post(
            "/v1/blobs", content=data, headers={"Content-Type": "application/octet-stream", **self._headers()}
        )
        _raise_for(response)
        return BlobUploaded.model_validate(response.json())

    async def download_blob(self, blob_id: str) -> bytes:
        response = await self._http.get(f"/v1/blobs/{blob_id}", headers=self._headers())
        _raise_for(response)
        return response.content

    async def report(self, request: ReportRequest) -> ReportAccepted:
        return await self._post("/v1/reports", request, ReportAccepted)

    async def block(self, username: str) -> None:
        response = await self._http.post(
            "/v1/blocks",
            content=BlockRequest(username=username).model_dump_json(),
            headers={"Content-Type": "application/json", **self._headers()},
        )
        _raise_for(response)

    async def unblock(self, username: str) -> None:
        _raise_for(await self._http.delete(f"/v1/blocks/{username}", headers=self._headers()))

    async def blocks(self) -> BlockList:
        return await self._get("/v1/blocks", BlockList)

    async def appeal(self, request: AppealRequest) -> AppealAccepted:
        return await self._post("/v1/appeals", request, AppealAccepted)

    async def notices(self, after: int = 0) -> NoticeList:
        return await self._get("/v1/notices", NoticeList, {"after": after})

    # ---- contacts and signed safety notices (see vigil.protocol.contacts) ---------------------------

    async def request_contact(self, username: str) -> ContactRequestView:
        request = ContactRequestCreate(to=username)
        return await self._post("/v1/contacts/requests", request, ContactRequestView)

    async def contact_requests(self) -> ContactRequestList:
        return await self._get("/v1/contacts/requests", ContactRequestList)

    async def answer_contact_request(self, request_id: int, answer: ContactAnswer) -> ContactRequestView:
        path = f"/v1/contacts/requests/{int(request_id)}/{answer}"
        return await self._post(path, _Empty(), ContactRequestView)

    async def contacts(self) -> ContactList:
        return await self._get("/v1/contacts", ContactList)

    async def report_account(self, request: AccountReportRequest) -> ReportAccepted:
        return await self._post("/v1/contacts/report", request, ReportAccepted)

    async def notice_key(self) -> NoticeKey:
        return await self._get("/v1/safety/notice-key", NoticeKey)

    async def safety_notices(self, after: int = 0) -> SignedNoticeList:
        return await self._get("/v1/safety/notices", SignedNoticeList, {"after": after})

    # ---- the known-image hash list and vouchers (see vigil.protocol.vouchers) ---------------------

    async def hashlist_authority(self) -> HashListAuthorityKey:
        return await self._get("/v1/hashlist/authority", HashListAuthorityKey)

    async def hashlist_head(self) -> HashListHead:
        return await self._get("/v1/hashlist/head", HashListHead)

    async def hashlist_manifests(self, since: int) -> ManifestBatch:
        return await self._get("/v1/hashlist/manifests", ManifestBatch, {"since": since})

    async def submit_voucher(self, submission: VoucherSubmission) -> VoucherAccepted:
        return await self._post("/v1/vouchers", submission, VoucherAccepted)

    # ---- groups and control messages (see vigil.protocol.group_wire) ------------------------------

    async def create_group(self, request: CreateGroupRequest) -> GroupInfo:
        return await self._post("/v1/groups", request, GroupInfo)

    async def list_groups(self) -> GroupList:
        return await self._get("/v1/groups", GroupList)

    async def group_info(self, group_id: str) -> GroupInfo:
        return await self._get(f"/v1/groups/{group_id}", GroupInfo)

    async def add_group_member(self, group_id: str, request: AddMemberRequest) -> GroupInfo:
        return await self._post(f"/v1/groups/{group_id}/members", request, GroupInfo)

    async def remove_group_member(self, group_id: str, username: str) -> GroupInfo:
        path = f"/v1/groups/{group_id}/members/{username}"
        response = await self._http.delete(path, headers=self._headers())
        _raise_for(response)
        return GroupInfo.model_validate(response.json())

    async def leave_group(self, group_id: str) -> None:
        response = await self._http.post(f"/v1/groups/{group_id}/leave", headers=self._headers())
        _raise_for(response)

    async def create_invite_link(self, group_id: str) -> InviteLink:
        response = await self._http.post(f"/v1/groups/{group_id}/link", headers=self._headers())
        _raise_for(response)
        return InviteLink.model_validate(response.json())

    async def revoke_invite_link(self, group_id: str) -> None:
        response = await self._http.delete(f"/v1/groups/{group_id}/link", headers=self._headers())
        _raise_for(response)

    async def join_group(self, request: JoinGroupRequest) -> GroupInfo:
        return await self._post("/v1/groups/join", request, GroupInfo)

    async def group_devices(self, group_id: str) -> GroupDevices:
        return await self._get(f"/v1/groups/{group_id}/devices", GroupDevices)

    async def send_group(self, group_id: str, request: GroupSendRequest) -> SendAccepted:
        return await self._post(f"/v1/groups/{group_id}/messages", request, SendAccepted)

    async def to_device(self, request: ToDeviceRequest) -> ToDeviceAccepted:
        return await self._post("/v1/to-device", request, ToDeviceAccepted)

    async def stream(self) -> AsyncIterator[tuple[list[Delivery], StreamAcker]]:
        """Yields batches of deliveries pushed over the WebSocket, with a callable to ack them on the
        same socket. Ends when the server closes the connection."""
        url = "ws" + self.server_url.removeprefix("http") + "/v1/stream"
        async with websockets.connect(url, additional_headers=self._headers(), max_size=2**24) as socket:
            acker = StreamAcker(socket)
            async for raw in socket:
                frame = json.loads(raw)
                if frame.get("type") == "deliveries":
                    yield [Delivery.model_validate(m) for m in frame["messages"]], acker
                elif frame.get("type") == "error":
                    raise ProtocolError(f"stream error: {frame.get('error')}: {frame.get('detail')}")


class StreamAcker:
    def __init__(self, socket: websockets.ClientConnection) -> None:
        self._socket = socket

    async def __call__(self, delivery_ids: list[int]) -> None:
        if delivery_ids:
            await self._socket.send(json.dumps({"type": "ack", "delivery_ids": delivery_ids}))

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import StreamingResponse

from vigil.errors import ValidationError
from vigil.protocol.wire import BlobUploaded
from vigil.server.api.deps import AuthDevice, Context
from vigil.server.api.errors import documented_errors
from vigil.server.ratelimit import Limit
from vigil.server.services import blobs

router = APIRouter(prefix="/v1/blobs", tags=["blobs"])

BlobIdPath = Annotated[str, Path(pattern=r"^[a-f0-9]{32}$")]


_OCTET_STREAM_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.post("", status_code=201, responses=documented_errors(413, 507), openapi_extra=_OCTET_STREAM_BODY)
async def upload(request: Request, ctx: Context, device: AuthDevice) -> BlobUploaded:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/octet-stream":
        raise ValidationError("blobs are uploaded as application/octet-stream")
    await ctx.limiter.hit(Limit.UPLOADS_PER_ACCOUNT, device.user_id)
    declared = request.headers.get("content-length")
    declared_size = int(declared) if declared is not None and declared.isdigit() else None
    return await blobs.upload_blob(ctx, device, request.stream(), declared_size=declared_size)


@router.get("/{blob_id}")
async def download(blob_id: BlobIdPath, ctx: Context, device: AuthDevice) -> StreamingResponse:
    found = await blobs.download_blob(ctx, device, blob_id)
    return StreamingResponse(
        found.chunks, media_type="application/octet-stream", headers={"content-length": str(found.size)}
    )

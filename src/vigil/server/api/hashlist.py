"""Hash-list distribution (public), safety vouchers (device-authenticated), profile photos."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from vigil.errors import NotFoundError, ValidationError
from vigil.protocol.vouchers import (
    HashListAuthorityKey,
    HashListHead,
    ManifestBatch,
    VoucherAccepted,
    VoucherSubmission,
    authority_fingerprint,
)
from vigil.protocol.wire import MAX_WIRE_INT
from vigil.server.api.deps import AuthDevice, Context
from vigil.server.hashlist_keys import load_authority_public_key
from vigil.server.ratelimit import Limit
from vigil.server.services import hashlist, vouchers

router = APIRouter(tags=["hashlist"])

_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})


@router.get("/v1/hashlist/head")
async def head(ctx: Context) -> HashListHead:
    return await hashlist.current_head(ctx)


@router.get("/v1/hashlist/authority")
async def authority(ctx: Context) -> HashListAuthorityKey:
    """Raises NotFoundError when this server names no authority key (see `load_authority_public_key`)."""
    key = load_authority_public_key(ctx.settings)
    if key is None:
        raise NotFoundError("this server names no hash-list authority key; configure it on the device")
    return HashListAuthorityKey(key=key, fingerprint=authority_fingerprint(key))


@router.get("/v1/hashlist/manifests")
async def manifests(ctx: Context, since: Annotated[int, Query(ge=0, le=MAX_WIRE_INT)] = 0) -> ManifestBatch:
    return await hashlist.manifests_since(ctx, since)


@router.post("/v1/vouchers", status_code=201)
async def submit_voucher(body: VoucherSubmission, ctx: Context, device: AuthDevice) -> VoucherAccepted:
    return await vouchers.submit_voucher(ctx, device, body)


_BINARY = {"schema": {"type": "string", "format": "binary"}}
_IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "content": {mime: _BINARY for mime in sorted(_IMAGE_TYPES)},
    }
}


@router.put("/v1/profile/photo", status_code=204, openapi_extra=_IMAGE_BODY)
async def put_profile_photo(request: Request, ctx: Context, device: AuthDevice) -> Response:
    mime = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if mime not in _IMAGE_TYPES:
        raise ValidationError(f"a profile photo is one of {sorted(_IMAGE_TYPES)}")
    await ctx.limiter.hit(Limit.UPLOADS_PER_ACCOUNT, device.user_id)
    await vouchers.set_profile_photo(ctx, device, await request.body(), mime)
    return Response(status_code=204)


@router.get("/v1/users/{username}/photo")
async def get_profile_photo(
    username: Annotated[str, Path(pattern=r"^[a-z0-9_]{3,32}$")], ctx: Context, device: AuthDevice
) -> Response:
    data, mime = await vouchers.profile_photo(ctx, device, username)
    return Response(content=data, media_type=mime)

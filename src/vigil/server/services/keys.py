"""Device key directory: one-time and fallback key upload, counts, claims and device lists."""

from __future__ import annotations

from vigil.errors import NotFoundError, ValidationError
from vigil.protocol.olm import verify_signed_key
from vigil.protocol.wire import (
    ClaimedDevice,
    ClaimedKeys,
    DeviceInfo,
    DeviceKeys,
    DeviceList,
    KeyCounts,
    SignedKey,
    UploadKeysRequest,
)
from vigil.server.context import ServerContext
from vigil.server.db.accounts import DeviceRepository, DeviceRow, KeyRepository, OneTimeKeyRow, UserRepository
from vigil.server.services.accounts import AuthenticatedDevice

__all__ = [
    "MAX_STORED_ONE_TIME_KEYS",
    "claim_keys",
    "device_info",
    "device_list",
    "key_counts",
    "upload_keys",
]

MAX_STORED_ONE_TIME_KEYS = 200


def device_info(row: DeviceRow) -> DeviceInfo:
    return DeviceInfo(
        device_id=row.id,
        keys=DeviceKeys(curve25519=row.curve25519, ed25519=row.ed25519, signature=row.signature),
    )


async def upload_keys(ctx: ServerContext, by: AuthenticatedDevice, request: UploadKeysRequest) -> KeyCounts:
    """Stores keys the device signed. Keys already stored are ignored, so an upload retried after a lost
    response is harmless. Raises TamperError on a bad signature, ValidationError past the storage cap."""
    async with ctx.sessions() as session, session.begin():
        device = await DeviceRepository(session).get(by.device_id)
        assert device is not None  # authenticated devices exist
        for key in [*request.one_time_keys, *([request.fallback_key] if request.fallback_key else [])]:
            verify_signed_key(device.ed25519, key)
        keys = KeyRepository(session)
        known = await keys.existing_key_ids(device.id, fallback=False)
        fresh = {k.key_id: k for k in request.one_time_keys if k.key_id not in known}
        if await keys.count_one_time(device.id) + len(fresh) > MAX_STORED_ONE_TIME_KEYS:
            raise ValidationError(f"a device stores at most {MAX_STORED_ONE_TIME_KEYS} one-time keys")
        await keys.add_all([_key_row(device.id, key, fallback=False) for key in fresh.values()])
        if request.fallback_key is not None:
            await keys.replace_fallback(_key_row(device.id, request.fallback_key, fallback=True))
        return KeyCounts(
            one_time_keys=await keys.count_one_time(device.id),
            fallback_key=await keys.has_fallback(device.id),
        )


def _key_row(device_id: str, key: SignedKey, *, fallback: bool) -> OneTimeKeyRow:
    return OneTimeKeyRow(
        device_id=device_id, key_id=key.key_id, key=key.key, signature=key.signature, is_fallback=fallback
    )


async def key_counts(ctx: ServerContext, by: AuthenticatedDevice) -> KeyCounts:
    async with ctx.sessions() as session:
        keys = KeyRepository(session)
        return KeyCounts(
            one_time_keys=await keys.count_one_time(by.device_id),
            fallback_key=await keys.has_fallback(by.device_id),
        )


async def device_list(ctx: ServerContext, username: str) -> DeviceList:
    """Raises NotFoundError for an unknown user."""
    async with ctx.sessions() as session:
        user = await UserRepository(session).by_username(username)
        if user is None:
            raise NotFoundError(f"no user named {username}")
        devices = await DeviceRepository(session).of_user(user.id)
        return DeviceList(username=username, devices=[device_info(d) for d in devices])


async def claim_keys(
    ctx: ServerContext, by: AuthenticatedDevice, username: str, device_ids: list[str] | None = None
) -> ClaimedKeys:
    """Claims one key per device of `username` (the caller's own devices excluded). A one-time key is
    handed out once; when none is left the device's fallback key is returned instead.
    Raises NotFoundError for an unknown user."""
    async with ctx.sessions() as session, session.begin():
        user = await UserRepository(session).by_username(username)
        if user is None:
            raise NotFoundError(f"no user named {username}")
        keys = KeyRepository(session)
        claimed = []
        for device in await DeviceRepository(session).of_user(user.id):
            if device.id == by.device_id or (device_ids is not None and device.id not in device_ids):
                continue
            row = await keys.take_one(device.id)
            claimed.append(
                ClaimedDevice(
                    device_id=device.id,
                    keys=device_info(device).keys,
                    one_time_key=None
                    if row is None
                    else SignedKey(key_id=row.key_id, key=row.key, signature=row.signature),
                    is_fallback=bool(row is not None and row.is_fallback),
                )
            )
        return ClaimedKeys(username=username, devices=claimed)

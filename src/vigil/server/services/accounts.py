"""Accounts, devices and per-device authentication."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from vigil.errors import AuthenticationError, ConflictError, PolicyViolation
from vigil.protocol.ids import DeviceId, UserId
from vigil.protocol.olm import verify_device_keys
from vigil.protocol.wire import (
    AddDeviceRequest,
    AgeBand,
    DeviceCredential,
    DeviceKeys,
    RegisterAccountRequest,
)
from vigil.safety.age import advance, band_and_next_change
from vigil.safety.policy import Standing
from vigil.server.context import ServerContext
from vigil.server.db.accounts import DeviceRepository, DeviceRow, UserRepository, UserRow

__all__ = ["AuthenticatedDevice", "add_device", "authenticate", "move_age_bands", "register_account"]

MAX_DEVICES_PER_USER = 16


@dataclass(frozen=True, slots=True)
class AuthenticatedDevice:
    user_id: int
    username: UserId
    device_id: DeviceId
    age_band: AgeBand


def _new_credential() -> tuple[str, str, bytes]:
    device_id = secrets.token_hex(8)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    return device_id, f"{device_id}.{secret}", hashlib.sha256(secret.encode()).digest()


def _device_row(user_id: int, keys: DeviceKeys, now_ms: int) -> tuple[DeviceRow, str]:
    verify_device_keys(keys)
    device_id, credential, digest = _new_credential()
    row = DeviceRow(
        id=device_id,
        user_id=user_id,
        curve25519=keys.curve25519,
        ed25519=keys.ed25519,
        signature=keys.signature,
        credential_sha256=digest,
        created_at_ms=now_ms,
    )
    return row, credential


async def register_account(ctx: ServerContext, request: RegisterAccountRequest) -> DeviceCredential:
    """Creates the account and its first device.

    Raises TamperError if the device keys are not self-signed, PolicyViolation for an under-13 or a birth
    date in the future, ConflictError if the username is taken.
    """
    now_ms = ctx.clock_ms()
    today = _today(ctx, now_ms)
    if request.birth_date > today:
        raise PolicyViolation("birth date is in the future")
    band, changes_on = band_and_next_change(request.birth_date, today)
    if band is AgeBand.UNDER_13:
        raise PolicyViolation("Vigil accounts need to be at least 13 years old")
    async with ctx.sessions() as session, session.begin():
        users = UserRepository(session)
        if await users.by_username(request.username) is not None:
            raise ConflictError("username is taken")
        try:
            user = await users.add(
                UserRow(
                    username=request.username,
                    age_band=band.value,
                    band_changes_on=None if changes_on is None else changes_on.isoformat(),
                    created_at_ms=now_ms,
                )
            )
            device, credential = _device_row(user.id, request.device, now_ms)
            await DeviceRepository(session).add(device)
        except IntegrityError as error:
            raise ConflictError("username is taken") from error
    return DeviceCredential(username=user.username, device_id=device.id, credential=credential, age_band=band)


async def add_device(
    ctx: ServerContext, by: AuthenticatedDevice, request: AddDeviceRequest
) -> DeviceCredential:
    """Links a new device to the caller's account, authorised by an existing device.

    Raises TamperError on unsigned keys, ConflictError past the device limit or for a key already in use.
    """
    now_ms = ctx.clock_ms()
    async with ctx.sessions() as session, session.begin():
        devices = DeviceRepository(session)
        existing = await devices.of_user(by.user_id)
        if len(existing) >= MAX_DEVICES_PER_USER:
            raise ConflictError(f"an account has at most {MAX_DEVICES_PER_USER} devices")
        if any(d.curve25519 == request.device.curve25519 for d in existing):
            raise ConflictError("this device key is already registered")
        device, credential = _device_row(by.user_id, request.device, now_ms)
        await devices.add(device)
    return DeviceCredential(
        username=by.username, device_id=device.id, credential=credential, age_band=by.age_band
    )


async def authenticate(
    ctx: ServerContext, credential: str, *, allow_suspended: bool = False
) -> AuthenticatedDevice:
    """Raises AuthenticationError for a malformed, unknown or wrong credential (one message for all),
    PolicyViolation for a suspended account unless `allow_suspended` (only appealing the suspension)."""
    device_id, _, secret = credential.partition(".")
    if not device_id or not secret or len(credential) > 200:
        raise AuthenticationError("invalid device credential")
    digest = hashlib.sha256(secret.encode()).digest()
    today = _today(ctx)
    cached: tuple[AuthenticatedDevice, dt.date] | None = ctx.credentials.lookup(device_id, digest)
    if cached is not None and cached[1] == today:  # the band was worked out for today
        return cached[0]
    generation = ctx.credentials.generation
    async with ctx.sessions() as session:
        # The standing comes with the device (enforcement.check_login's rule, without a second query).
        found = await DeviceRepository(session).with_user_and_standing(device_id)
    if found is None or not hmac.compare_digest(found[0].credential_sha256, digest):
        raise AuthenticationError("invalid device credential")
    device, user, standing = found
    suspended = standing is not None and Standing(standing) is Standing.SUSPENDED
    if suspended and not allow_suspended:
        raise PolicyViolation("this account is suspended")  # never cached: lifting needs no invalidation
    # The band as of today, even before the age-band job has moved the stored one on.
    band, _ = advance(AgeBand(user.age_band), _date_or_none(user.band_changes_on), today)
    authenticated = AuthenticatedDevice(user.id, UserId(user.username), DeviceId(device.id), band)
    if suspended:
        return authenticated  # never cached, so no other endpoint can reuse it
    ctx.credentials.store(generation, device.id, digest, user.id, (authenticated, today))
    return authenticated


def _today(ctx: ServerContext, now_ms: int | None = None) -> dt.date:
    now = ctx.clock_ms() if now_ms is None else now_ms
    return dt.datetime.fromtimestamp(now / 1000, tz=dt.UTC).date()


def _date_or_none(value: str | None) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(value)


async def move_age_bands(ctx: ServerContext, now_ms: int) -> int:
    """The age-band job: moves on the band of every account whose change date has come (a 13-15 turns
    16, a 16-17 becomes an adult on their 18th birthday and keeps no date); returns how many moved."""
    today = _today(ctx, now_ms)
    async with ctx.sessions() as session, session.begin():
        due = await UserRepository(session).band_changes_due(today.isoformat())
        for user in due:
            band, changes_on = advance(AgeBand(user.age_band), _date_or_none(user.band_changes_on), today)
            user.age_band = band.value
            user.band_changes_on = None if changes_on is None else changes_on.isoformat()
        return len(due)

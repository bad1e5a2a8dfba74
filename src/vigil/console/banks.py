"""The console's bank pages: what they show, and the few conversions between form fields and the hash-list
service (which does the work, with the CLI, and writes the audit log)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import UploadFile

from vigil.errors import PermissionDenied, ValidationError
from vigil.protocol.vouchers import HashListHead
from vigil.safety.hashing.banks import BankKind
from vigil.safety.hashing.pdq import HASH_BITS, MATCH_DISTANCE_THRESHOLD
from vigil.server.context import ServerContext
from vigil.server.exchanges import Exchange, configured_exchanges
from vigil.server.hashlist_keys import HashListKeySettings, load_signing_key, load_voucher_public_key
from vigil.server.services import hashlist

__all__ = [
    "MAX_UPLOAD_BYTES",
    "PUBLISH_COMMAND",
    "BanksView",
    "banks_view",
    "parse_kind",
    "parse_threshold",
    "publish_from_console",
    "read_upload",
]

MAX_UPLOAD_BYTES = 64 * 1024 * 1024
PUBLISH_COMMAND = "vigil hashlist publish"


@dataclass(frozen=True, slots=True)
class BanksView:
    banks: list[hashlist.BankInfo]
    head: HashListHead
    can_publish: bool
    publish_command: str
    exchanges: dict[Exchange, str]  # configured exchange -> its bank
    kinds: list[BankKind]
    default_threshold: int


async def banks_view(ctx: ServerContext) -> BanksView:
    return BanksView(
        banks=await hashlist.list_banks(ctx),
        head=await hashlist.current_head(ctx),
        can_publish=HashListKeySettings().console_publish,
        publish_command=PUBLISH_COMMAND,
        exchanges=configured_exchanges(),
        kinds=list(BankKind),
        default_threshold=MATCH_DISTANCE_THRESHOLD,
    )


def parse_kind(value: str) -> BankKind:
    """Raises ValidationError."""
    try:
        return BankKind(value or BankKind.NORMAL.value)
    except ValueError as error:
        raise ValidationError("kind is 'normal' or 'negative'") from error


def parse_threshold(value: str) -> int:
    """Raises ValidationError (the service checks the range again)."""
    if not value:
        return MATCH_DISTANCE_THRESHOLD
    if not value.isdigit() or int(value) > HASH_BITS:
        raise ValidationError(f"threshold is a whole number in 0..{HASH_BITS}")
    return int(value)


async def read_upload(upload: object) -> tuple[str, str]:
    """(file name, text) of an uploaded hash file. Raises ValidationError for no file, a file over
    MAX_UPLOAD_BYTES or one that is not UTF-8."""
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise ValidationError("choose a file to import")
    data = await upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValidationError(f"files are at most {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
    try:
        return upload.filename[:200], data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValidationError("the file is not UTF-8 text") from error


async def publish_from_console(ctx: ServerContext, actor: str) -> hashlist.Published:
    """Signs the next list version with the authority key, loaded for this call only. Raises
    PermissionDenied when this deployment does not let the console publish, and whatever
    `hashlist.publish` or the key loaders raise."""
    keys = HashListKeySettings()
    if not keys.console_publish:
        raise PermissionDenied(
            f"this deployment keeps the authority key away from the server: run `{PUBLISH_COMMAND}` "
            "where the key lives"
        )
    signing_key = load_signing_key(ctx.settings, keys)
    return await hashlist.publish(
        ctx,
        signing_key,
        load_voucher_public_key(ctx.settings, keys),
        issued_at=ctx.clock_ms() // 1000,
        actor=actor,
    )

"""`vigil hashlist`: the safety team's banks, publication of the signed hash list, checking a client's
list against the transparency log, and opening vouchers into cases.

Runs against the server's database (`VIGIL_DATA_DIR` / `VIGIL_DATABASE_URL`), not over HTTP. Publishing
needs the authority signing key (`VIGIL_HASHLIST_SIGNING_KEY_FILE`), opening vouchers the safety team's
voucher key (`VIGIL_HASHLIST_VOUCHER_KEY_FILE`); both are generated into the data dir in dev.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer
from rich.console import Console

from vigil.errors import VigilError

if TYPE_CHECKING:
    from vigil.server.context import ServerContext

__all__ = ["hashlist_app"]

T = TypeVar("T")

hashlist_app = typer.Typer(
    help="Known-image hash banks, signed hash lists and vouchers.", no_args_is_help=True
)
bank_app = typer.Typer(help="Hash banks (the safety team's).", no_args_is_help=True)
hashlist_app.add_typer(bank_app, name="bank")
console = Console()


def _run(work: Callable[[ServerContext], Awaitable[T]]) -> T:
    async def main() -> T:
        from vigil.server.offline import offline_context
        from vigil.server.settings import Settings

        async with offline_context(Settings()) as ctx:
            return await work(ctx)

    try:
        return asyncio.run(main())
    except VigilError as error:
        console.print(f"[red]error[/red] ({error.code}): {error.detail}")
        raise typer.Exit(1) from error


@bank_app.command("create")
def bank_create(
    name: str = typer.Argument(..., help="Bank name."),
    kind: str = typer.Option("normal", help="normal (known abuse) or negative (known false positives)."),
    threshold: int = typer.Option(31, help="Hamming distance within which an entry matches."),
) -> None:
    """Create an empty, enabled bank."""
    from vigil.safety.hashing.banks import BankKind
    from vigil.server.services.hashlist import create_bank

    try:
        bank_kind = BankKind(kind)
    except ValueError as error:
        raise typer.BadParameter("kind is 'normal' or 'negative'") from error
    info = _run(lambda ctx: create_bank(ctx, name, kind=bank_kind, threshold=threshold))
    console.print(f"created bank {info.name} ({info.kind.value}, threshold {info.threshold})")


@bank_app.command("import")
def bank_import(
    name: str = typer.Argument(..., help="Bank name."),
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="Hash file: PDQ hashes (64 hex digits), one per line."
    ),
    format: str = typer.Option(
        "threatexchange",
        "--format",
        help="threatexchange (`pdq <hex>` lines, as `vigil hashlist hash` prints) or csv "
        "(`hash[,label...]`).",
    ),
) -> None:
    """Add the PDQ hashes of a file to a bank (duplicates skipped); images are never imported, only their
    hashes (`vigil hashlist hash IMAGE` makes one)."""
    from vigil.server.services.hashlist import import_entries

    text = file.read_text()
    added = _run(lambda ctx: import_entries(ctx, name, text, format))
    console.print(f"{added} new entries in {name}")


@hashlist_app.command("hash")
def hash_image_file(
    image: Path = typer.Argument(..., exists=True, dir_okay=False, help="Image file (JPEG, PNG, ...)."),
    plain_only: bool = typer.Option(
        False,
        "--plain-only",
        help="Print only the plain PDQ hash (what other PDQ tools compute, e.g. to share with an exchange).",
    ),
) -> None:
    """Print an image's PDQ hash as a `pdq <hex>` line (a line of a bank import file), then one such line for
    each normalised copy whose hash differs (its content with a uniform margin trimmed, its small copy), so
    that copies with a frame of the margin's own colour or shrunk to a thumbnail match; its quality goes to
    stderr. Below the matching minimum the hash must not be banked."""
    from vigil.safety.hashing.pdq import MIN_MATCH_QUALITY, PdqHash, hash_for_bank, hash_image

    hashes: tuple[PdqHash, ...]
    try:
        data = image.read_bytes()
        if plain_only:
            plain = hash_image(data, dihedral=False)
            hashes, quality = (plain.hash,), plain.quality
        else:
            banked = hash_for_bank(data)
            hashes, quality = banked.all(), banked.quality
    except VigilError as error:
        console.print(f"[red]error[/red] ({error.code}): {error.detail}")
        raise typer.Exit(1) from error
    for pdq in hashes:
        typer.echo(f"pdq {pdq.hex()}")
    verdict = "usable" if quality >= MIN_MATCH_QUALITY else f"too low to bank (< {MIN_MATCH_QUALITY})"
    extra = f"; {len(hashes) - 1} more for its trimmed content / small copy" if len(hashes) > 1 else ""
    typer.echo(f"quality {quality} ({verdict}){extra}", err=True)


@bank_app.command("list")
def bank_list() -> None:
    """List banks with their entry counts."""
    from vigil.server.services.hashlist import list_banks

    for info in _run(list_banks):
        state = "enabled" if info.enabled else "disabled"
        console.print(
            f"{info.name}\t{info.kind.value}\tthreshold={info.threshold}\t{state}\t{info.entries} entries"
        )


def _set_enabled(name: str, enabled: bool) -> None:
    from vigil.server.services.hashlist import set_bank_enabled

    info = _run(lambda ctx: set_bank_enabled(ctx, name, enabled))
    console.print(f"{info.name} {'enabled' if info.enabled else 'disabled'} (publish to take effect)")


@bank_app.command("enable")
def bank_enable(name: str = typer.Argument(...)) -> None:
    """Enable a bank (from the next publication)."""
    _set_enabled(name, True)


@bank_app.command("disable")
def bank_disable(name: str = typer.Argument(...)) -> None:
    """Disable a bank (from the next publication)."""
    _set_enabled(name, False)


@bank_app.command("fetch")
def bank_fetch(
    exchange: str = typer.Argument(
        ..., help="ncmec or threatexchange (configured by VIGIL_NCMEC_* / VIGIL_THREATEXCHANGE_*)."
    ),
) -> None:
    """Pull an exchange's current PDQ hashes into its bank (entries it no longer lists are removed)."""
    from vigil.server.exchanges import Exchange, sync_exchange

    try:
        which = Exchange(exchange)
    except ValueError as error:
        raise typer.BadParameter("exchange is 'ncmec' or 'threatexchange'") from error
    out = _run(lambda ctx: sync_exchange(ctx, which, actor="cli"))
    console.print(f"{which.value}: +{out.added} -{out.removed}, {out.total} entries (publish to take effect)")


@hashlist_app.command("publish")
def publish(full: bool = typer.Option(False, help="Publish the whole list instead of a delta.")) -> None:
    """Sign the enabled banks as the next list version and append it to the transparency log."""
    from vigil.server.hashlist_keys import load_signing_key, load_voucher_public_key
    from vigil.server.services import hashlist

    async def work(ctx: ServerContext) -> hashlist.Published:
        settings = ctx.settings
        key = load_signing_key(settings)
        return await hashlist.publish(
            ctx, key, load_voucher_public_key(settings), issued_at=int(time.time()), full=full
        )

    out = _run(work)
    console.print(
        f"published version {out.version} (+{out.added} -{out.removed}) root {out.root}\n"
        f"log size {out.log_size} head {out.log_head}"
    )


@hashlist_app.command("authority-key")
def authority_key() -> None:
    """Print the authority's public key, the value clients pin (`vigil chat --hashlist-authority-key`, or
    `VIGIL_HASHLIST_AUTHORITY_KEY` for the server to name it), and its fingerprint, which users compare."""
    from vigil.protocol.vouchers import authority_fingerprint, encode_authority_key
    from vigil.server.hashlist_keys import load_signing_key
    from vigil.server.settings import Settings

    try:
        key = encode_authority_key(load_signing_key(Settings()).public_key())
        console.print(key)
        console.print(f"fingerprint {authority_fingerprint(key)}")
    except VigilError as error:
        console.print(f"[red]error[/red] ({error.code}): {error.detail}")
        raise typer.Exit(1) from error


@hashlist_app.command("verify")
def verify(
    version: int = typer.Option(..., help="The client's list version."),
    root: str = typer.Option(..., help="The client's list root hash (hex)."),
    authority_key: str | None = typer.Option(
        None, help="Pinned authority key (base64); default: the local one."
    ),
) -> None:
    """Check a client's list (version, root) against the replayed transparency log."""
    from vigil.protocol.vouchers import decode_authority_key
    from vigil.safety.hashing.hashlist import LogHead
    from vigil.server.hashlist_keys import load_signing_key
    from vigil.server.services.hashlist import verify_client_list

    async def work(ctx: ServerContext) -> LogHead:
        settings = ctx.settings
        key = (
            decode_authority_key(authority_key) if authority_key else load_signing_key(settings).public_key()
        )
        return await verify_client_list(ctx, key, version=version, root=root)

    head = _run(work)
    console.print(f"OK: version {version} is in the log; log size {head.size} head {head.hash.hex()}")


@hashlist_app.command("open-vouchers")
def open_vouchers() -> None:
    """Open pending vouchers with the safety team's key and create a high-priority case for each."""
    from vigil.server.hashlist_keys import load_voucher_keypair
    from vigil.server.services.vouchers import OpenResult, open_pending_vouchers

    async def work(ctx: ServerContext) -> OpenResult:
        return await open_pending_vouchers(ctx, load_voucher_keypair(ctx.settings))

    result = _run(work)
    console.print(f"opened {result.opened} vouchers, {len(result.cases)} cases: {result.cases}")
    for line in result.failed:
        console.print(f"[yellow]not a case[/yellow] {line}")


@hashlist_app.command("cases")
def cases() -> None:
    """List image-match cases, highest priority first."""
    from vigil.server.services.vouchers import list_image_cases

    for case in _run(list_image_cases):
        badge = "verified" if case.verified else "UNVERIFIED"
        console.print(
            f"#{case.id} p{case.priority} {case.state} {case.source}/{case.direction} subject={case.subject} "
            f"bank={case.bank} distance={case.distance} {badge}: {case.verification}"
        )

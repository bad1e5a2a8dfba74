"""Hash banks (the safety team's), publication of the signed hash list, its distribution, and the
server-side matcher used on unencrypted surfaces (profile photos).

Publishing replays the whole stored log under the authority key before appending (so a corrupted or
foreign log is refused, never extended), computes a delta from the previous version with
`HashListPublisher`, and stores the signed manifest with the new log head in one transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from vigil.errors import ConflictError, NotFoundError, ValidationError
from vigil.protocol.encoding import b64encode
from vigil.protocol.vouchers import HashListHead, ManifestBatch, voucher_key_statement
from vigil.safety.hashing.banks import (
    Bank,
    BankEntry,
    BankKind,
    BankName,
    EntryId,
    Matcher,
    MatchResult,
    parse_csv,
    parse_threatexchange_file,
)
from vigil.safety.hashing.distribution import check_bank_name, list_entries
from vigil.safety.hashing.hashlist import (
    HashListAuthority,
    HashListPublisher,
    LogHead,
    Sha256Digest,
    SignedManifest,
    TransparencyLog,
    check_client_list,
)
from vigil.safety.hashing.pdq import MATCH_DISTANCE_THRESHOLD, ImageHash, PdqHash
from vigil.server.context import ServerContext
from vigil.server.db.hashlists import (
    BankEntryRow,
    BankRepository,
    BankRow,
    HashListRepository,
    ManifestRow,
    VoucherKeyRow,
)
from vigil.server.services.audit import append_audit

__all__ = [
    "MANIFEST_BATCH",
    "BankInfo",
    "ImportFormat",
    "Published",
    "SyncResult",
    "bank_matcher",
    "create_bank",
    "current_head",
    "enabled_banks",
    "import_entries",
    "list_banks",
    "manifests_since",
    "match_image",
    "parse_import",
    "publish",
    "set_bank_enabled",
    "sync_bank_entries",
    "verify_client_list",
]

MANIFEST_BATCH = 50
DEFAULT_ACTOR = "cli"
"""Who the audit log names when a caller (the CLI, a test) does not say."""


@dataclass(frozen=True, slots=True)
class BankInfo:
    name: str
    kind: BankKind
    threshold: int
    enabled: bool
    entries: int


@dataclass(frozen=True, slots=True)
class Published:
    version: int
    root: str
    log_size: int
    log_head: str
    added: int
    removed: int


@dataclass(frozen=True, slots=True)
class SyncResult:
    added: int
    removed: int
    total: int


ImportFormat = str  # "threatexchange" | "csv"


def _bank_target(name: str) -> str:
    return f"bank:{name}"


def _info(row: BankRow, count: int) -> BankInfo:
    return BankInfo(row.name, BankKind(row.kind), row.threshold, row.enabled, count)


async def create_bank(
    ctx: ServerContext,
    name: str,
    *,
    kind: BankKind = BankKind.NORMAL,
    threshold: int = MATCH_DISTANCE_THRESHOLD,
    actor: str = DEFAULT_ACTOR,
) -> BankInfo:
    """Raises ValidationError (bad name or threshold) or ConflictError (name taken). Audited."""
    check_bank_name(name)
    Bank(BankName(name), kind, (), threshold)  # validates the threshold
    async with ctx.sessions() as session, session.begin():
        banks = BankRepository(session)
        if await banks.by_name(name) is not None:
            raise ConflictError(f"bank {name!r} already exists")
        row = await banks.add(
            BankRow(
                name=name, kind=kind.value, threshold=threshold, enabled=True, created_at_ms=ctx.clock_ms()
            )
        )
        await append_audit(
            session,
            now_ms=ctx.clock_ms(),
            actor=actor,
            action="bank.created",
            target=_bank_target(name),
            details={"kind": kind.value, "threshold": threshold},
        )
        return _info(row, 0)


def parse_import(text: str, fmt: ImportFormat) -> list[BankEntry]:
    """Raises ValidationError for an unknown format or a bad file (naming the line)."""
    match fmt:
        case "threatexchange":
            return parse_threatexchange_file(text, bare_signal_type="pdq")
        case "csv":
            return parse_csv(text)
        case _:
            raise ValidationError("format is 'threatexchange' or 'csv'")


async def import_entries(
    ctx: ServerContext,
    name: str,
    text: str,
    fmt: ImportFormat,
    *,
    actor: str = DEFAULT_ACTOR,
    source: str = "",
) -> int:
    """Adds the file's hashes to the bank (already present ones are skipped); returns how many were new.
    Raises NotFoundError (no such bank) or ValidationError (bad file, naming the line). Audited, with
    `source` (e.g. the uploaded file's name) in the entry's details."""
    entries = parse_import(text, fmt)
    async with ctx.sessions() as session, session.begin():
        banks = BankRepository(session)
        bank = await banks.by_name(name)
        if bank is None:
            raise NotFoundError(f"no bank named {name!r}")
        held = await banks.hashes(bank.id)
        now = ctx.clock_ms()
        fresh = [e for e in entries if e.hash.hex() not in held]
        banks.add_entries(
            [
                BankEntryRow(
                    bank_id=bank.id, hash=e.hash.hex(), labels=json.dumps(list(e.labels)), created_at_ms=now
                )
                for e in fresh
            ]
        )
        if fresh:
            await banks.bump_revision(bank.id)
        await append_audit(
            session,
            now_ms=now,
            actor=actor,
            action="bank.imported",
            target=_bank_target(name),
            details={"format": fmt, "source": source[:200], "lines": len(entries), "added": len(fresh)},
        )
        return len(fresh)


async def sync_bank_entries(
    ctx: ServerContext, name: str, entries: list[BankEntry], *, actor: str, source: str
) -> SyncResult:
    """Makes the bank hold exactly `entries` (an exchange's current set): adds the new ones, removes the
    ones no longer listed, in one transaction, so a failed fetch never leaves a half-synced bank (the
    caller fetches everything before calling). Raises NotFoundError. Audited."""
    wanted = {e.hash.hex(): e for e in entries}
    async with ctx.sessions() as session, session.begin():
        banks = BankRepository(session)
        bank = await banks.by_name(name)
        if bank is None:
            raise NotFoundError(f"no bank named {name!r}")
        held = await banks.hashes(bank.id)
        now = ctx.clock_ms()
        fresh = [e for key, e in wanted.items() if key not in held]
        gone = sorted(held - wanted.keys())
        banks.add_entries(
            [
                BankEntryRow(
                    bank_id=bank.id, hash=e.hash.hex(), labels=json.dumps(list(e.labels)), created_at_ms=now
                )
                for e in fresh
            ]
        )
        await banks.remove_entries(bank.id, gone)
        if fresh or gone:
            await banks.bump_revision(bank.id)
        await append_audit(
            session,
            now_ms=now,
            actor=actor,
            action="bank.synced",
            target=_bank_target(name),
            details={"source": source, "added": len(fresh), "removed": len(gone), "total": len(wanted)},
        )
        return SyncResult(len(fresh), len(gone), len(wanted))


async def list_banks(ctx: ServerContext) -> list[BankInfo]:
    async with ctx.sessions() as session:
        banks = BankRepository(session)
        counts = await banks.entry_counts()
        return [_info(row, counts.get(row.id, 0)) for row in await banks.all()]


async def set_bank_enabled(
    ctx: ServerContext, name: str, enabled: bool, *, actor: str = DEFAULT_ACTOR
) -> BankInfo:
    """Raises NotFoundError. Takes effect for clients at the next `publish`. Audited."""
    async with ctx.sessions() as session, session.begin():
        banks = BankRepository(session)
        row = await banks.by_name(name)
        if row is None:
            raise NotFoundError(f"no bank named {name!r}")
        row.enabled = enabled
        await banks.bump_revision(row.id)
        await append_audit(
            session,
            now_ms=ctx.clock_ms(),
            actor=actor,
            action="bank.enabled" if enabled else "bank.disabled",
            target=_bank_target(name),
        )
        return _info(row, (await banks.entry_counts()).get(row.id, 0))


async def enabled_banks(ctx: ServerContext) -> list[Bank]:
    """The enabled banks as domain objects (entries carry their labels)."""
    async with ctx.sessions() as session:
        repo = BankRepository(session)
        rows = [row for row in await repo.all() if row.enabled]
        grouped: dict[int, list[BankEntry]] = {row.id: [] for row in rows}
        for entry in await repo.entries(list(grouped)):
            grouped[entry.bank_id].append(
                BankEntry(EntryId(entry.hash), PdqHash.from_hex(entry.hash), tuple(json.loads(entry.labels)))
            )
    return [
        Bank(BankName(row.name), BankKind(row.kind), tuple(grouped[row.id]), row.threshold, True)
        for row in rows
    ]


def _records(rows: list[ManifestRow]) -> list[SignedManifest]:
    return [SignedManifest.from_bytes(row.signed) for row in rows]


async def publish(
    ctx: ServerContext,
    signing_key: Ed25519PrivateKey,
    voucher_public_key: bytes,
    *,
    issued_at: int,
    full: bool = False,
    actor: str = DEFAULT_ACTOR,
) -> Published:
    """Signs the enabled banks as the next list version and appends it to the log; also (re)signs the
    voucher key if it changed. Raises whatever `TransparencyLog.replay` raises if the stored log does not
    verify under this key, RollbackError if `issued_at` is older than the last version. Two concurrent
    publications cannot both land: the version is the primary key."""
    authority = HashListAuthority(signing_key)
    entries = list_entries(await enabled_banks(ctx))
    async with ctx.sessions() as session, session.begin():
        repo = HashListRepository(session)
        publisher = HashListPublisher(authority)
        publisher.log = TransparencyLog.replay(authority.public_key, _records(list(await repo.manifests())))
        signed = publisher.publish(entries, issued_at=issued_at, full=full)
        head = publisher.log.head()
        m = signed.manifest
        await repo.add(
            ManifestRow(
                version=m.version,
                signed=signed.to_bytes(),
                root=m.root.hex(),
                log_head=head.hash.hex(),
                issued_at=m.issued_at,
                created_at_ms=ctx.clock_ms(),
            )
        )
        current = await repo.voucher_key()
        if current is None or current.public_key != voucher_public_key:
            await repo.add_voucher_key(
                VoucherKeyRow(
                    public_key=voucher_public_key,
                    signature=signing_key.sign(voucher_key_statement(voucher_public_key)),
                    created_at_ms=ctx.clock_ms(),
                )
            )
        await append_audit(
            session,
            now_ms=ctx.clock_ms(),
            actor=actor,
            action="hashlist.published",
            target=f"hashlist:v{m.version}",
            details={
                "root": m.root.hex(),
                "log_head": head.hash.hex(),
                "added": len(m.entries),
                "removed": len(m.removed),
            },
        )
    return Published(m.version, m.root.hex(), head.size, head.hash.hex(), len(m.entries), len(m.removed))


def _empty_head() -> str:
    # The empty log's head does not depend on the key; any key builds it.
    return TransparencyLog(Ed25519PrivateKey.generate().public_key()).head().hash.hex()


async def _head(repo: HashListRepository) -> HashListHead:
    latest = await repo.latest()
    key = await repo.voucher_key()
    return HashListHead(
        version=0 if latest is None else latest.version,
        root=None if latest is None else latest.root,
        log_size=0 if latest is None else latest.version,
        log_head=_empty_head() if latest is None else latest.log_head,
        voucher_key=None if key is None else b64encode(key.public_key),
        voucher_key_signature=None if key is None else b64encode(key.signature),
    )


async def current_head(ctx: ServerContext) -> HashListHead:
    async with ctx.sessions() as session:
        return await _head(HashListRepository(session))


async def manifests_since(ctx: ServerContext, since: int, limit: int = MANIFEST_BATCH) -> ManifestBatch:
    """Signed manifests after version `since`, oldest first. Raises ValidationError on a negative `since`."""
    if since < 0:
        raise ValidationError("since must be >= 0")
    async with ctx.sessions() as session:
        repo = HashListRepository(session)
        rows = list(await repo.manifests(since, limit + 1))
        head = await _head(repo)
    return ManifestBatch(
        manifests=[b64encode(row.signed) for row in rows[:limit]], head=head, more=len(rows) > limit
    )


async def verify_client_list(
    ctx: ServerContext, authority_key: Ed25519PublicKey, *, version: int, root: str
) -> LogHead:
    """Replays the stored log under the authority key and checks the client's (version, root) against it.
    Raises NotInLogError on a mismatch (or a log error if the stored log itself is invalid)."""
    async with ctx.sessions() as session:
        repo = HashListRepository(session)
        rows = list(await repo.manifests())
    try:
        digest = Sha256Digest(bytes.fromhex(root))
    except ValueError as error:
        raise ValidationError("root is 64 hex digits") from error
    published = None
    if rows:
        published = LogHead(len(rows), Sha256Digest(bytes.fromhex(rows[-1].log_head)))
    return check_client_list(
        authority_key, _records(rows), version=version, root=digest, published_head=published
    )


async def bank_matcher(ctx: ServerContext) -> Matcher:
    """The matcher for the enabled banks as they are now: this process's cached one while no bank has
    changed (one small query to tell), else built in a worker thread, or loaded from the index saved
    under the data directory when that was built from the same banks (another worker, a restart)."""
    async with ctx.sessions() as session:
        revision = _revision_key(await BankRepository(session).revisions())
    cache = ctx.bank_matchers
    matcher = cache.current(revision)
    if matcher is not None:
        return matcher
    async with cache.lock:
        matcher = cache.current(revision)
        if matcher is None:
            # Read after the revision: if a bank changes in between, the next call sees a newer revision
            # and builds again; a matcher never lags its revision.
            banks = await enabled_banks(ctx)
            matcher = await asyncio.to_thread(cache.install, revision, banks)
        return matcher


def _revision_key(revisions: list[tuple[int, str, int, bool, int]]) -> str:
    return hashlib.sha256(json.dumps(revisions).encode()).hexdigest()


async def match_image(ctx: ServerContext, image: ImageHash) -> MatchResult:
    """Matches a server-side image (an unencrypted surface) against the enabled banks.
    Raises LowQualityImageError when the image is below the matching quality."""
    return (await bank_matcher(ctx)).match_image(image)

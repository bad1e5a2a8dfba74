"""The append-only, hash-chained audit log of the trust & safety side.

Entry n stores `entry_hash = SHA-256("vigil-audit-v1" || prev_hash || length-prefixed(n, ts, actor,
action, target, details))` with `prev_hash` the hash of entry n-1 (32 zero bytes for the first). The
single `audit_head` row holds the last number and hash and is updated in the appending transaction; it
also serialises appends. `verify_chain` detects an edited entry (its hash no longer matches), a removed
entry (a gap in the numbers or a broken link) and a truncated tail (the head no longer matches).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from vigil.errors import StorageError
from vigil.protocol.encoding import length_prefixed
from vigil.server.db.audit import AuditRepository, AuditRow

__all__ = [
    "GENESIS",
    "AuditEntry",
    "ChainCheck",
    "append_audit",
    "append_audits",
    "entries_for",
    "entry_hash",
    "recent_entries",
    "verify_chain",
]

GENESIS = bytes(32)
_DOMAIN = b"vigil-audit-v1"


def entry_hash(
    prev_hash: bytes, seq: int, ts_ms: int, actor: str, action: str, target: str, details: str
) -> bytes:
    encoded = length_prefixed(
        str(seq).encode(),
        str(ts_ms).encode(),
        actor.encode(),
        action.encode(),
        target.encode(),
        details.encode(),
    )
    return hashlib.sha256(_DOMAIN + prev_hash + encoded).digest()


@dataclass(frozen=True, slots=True)
class AuditEntry:
    actor: str
    action: str
    target: str
    details: Mapping[str, object] | None = None


async def append_audit(
    session: AsyncSession,
    *,
    now_ms: int,
    actor: str,
    action: str,
    target: str,
    details: Mapping[str, object] | None = None,
) -> None:
    """Appends one entry inside the caller's transaction. Raises StorageError if the head row is missing
    (the database was not migrated)."""
    await append_audits(session, now_ms, [AuditEntry(actor, action, target, details)])


async def append_audits(session: AsyncSession, now_ms: int, entries: Sequence[AuditEntry]) -> None:
    """Appends the entries, in order, inside the caller's transaction: the head is advanced once and the
    entries go in one insert (a pass that acts on many accounts audits each in one round trip). Raises
    StorageError if the head row is missing (the database was not migrated)."""
    if not entries:
        return
    audit = AuditRepository(session)
    head = await audit.take_seqs(len(entries))
    if head is None:
        raise StorageError("the audit log has no head row")
    seq, prev_hash = head
    values: list[dict[str, object]] = []
    for entry in entries:
        text = json.dumps(dict(entry.details or {}), sort_keys=True, separators=(",", ":"), default=str)
        digest = entry_hash(prev_hash, seq, now_ms, entry.actor, entry.action, entry.target, text)
        values.append(
            {
                "id": seq,
                "ts_ms": now_ms,
                "actor": entry.actor,
                "action": entry.action,
                "target": entry.target,
                "details": text,
                "prev_hash": prev_hash,
                "entry_hash": digest,
            }
        )
        seq, prev_hash = seq + 1, digest
    await audit.append_many(values)


async def entries_for(session: AsyncSession, target: str, limit: int = 200) -> list[AuditRow]:
    return await AuditRepository(session).for_target(target, limit)


async def recent_entries(session: AsyncSession, limit: int = 200) -> list[AuditRow]:
    return await AuditRepository(session).recent(limit)


@dataclass(frozen=True, slots=True)
class ChainCheck:
    ok: bool
    entries: int
    problem: str  # "" when ok
    entry_id: int | None = None


async def verify_chain(session: AsyncSession, batch: int = 1000) -> ChainCheck:
    """Walks the whole log in order and checks every link, every hash and the head."""
    audit = AuditRepository(session)
    expected_seq, running, count = 1, GENESIS, 0
    last_id = 0
    while True:
        rows = await audit.after(last_id, batch)
        for row in rows:
            if row.id != expected_seq:
                return ChainCheck(False, count, f"entry {expected_seq} is missing", expected_seq)
            if not hmac.compare_digest(bytes(row.prev_hash), running):
                return ChainCheck(
                    False, count, f"entry {row.id} does not link to the entry before it", row.id
                )
            digest = entry_hash(running, row.id, row.ts_ms, row.actor, row.action, row.target, row.details)
            if not hmac.compare_digest(digest, bytes(row.entry_hash)):
                return ChainCheck(
                    False, count, f"entry {row.id} was edited (its hash does not match)", row.id
                )
            running, expected_seq, count, last_id = digest, expected_seq + 1, count + 1, row.id
        if len(rows) < batch:
            break
    head = await audit.head()
    if head is None:
        return ChainCheck(False, count, "the audit head row is missing")
    if head.seq != count or not hmac.compare_digest(bytes(head.last_hash), running):
        return ChainCheck(
            False,
            count,
            f"the head records {head.seq} entries but the log holds {count}: entries were removed",
        )
    return ChainCheck(True, count, "")

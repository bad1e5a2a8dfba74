"""Device and account deletion (issue 16). A user deletes one of their devices, or their account; what a
preservation hold or an open safety case needs is kept, everything else goes, and the answer says which.

Deleting the account always removes its devices (keys, queued ciphertexts), profile photo, connections,
blocks, group memberships, pending contact requests, notices addressed to it and uploaded blobs (except
blobs a hold pins). When no open case or unopened voucher covers the account, its metadata goes too
(metadata events, delivery records, contact requests, safety notices about it, risk and enforcement state)
and the username is replaced by a random tombstone, so what stays (reports it made about others, closed
cases about it) names no one. When one does, the username and that metadata are kept for the case, and
the account is marked (`deletion_pending_since_ms`); the deleted_accounts retention sweep
(`finish_pending_deletions`) finishes the deletion once the case is closed and the voucher opened.

A preservation hold does not keep the originals: it copied what it keeps into its case when it was placed
(`services.preservation`), so the account's own records go as above and the answer says that the sealed
copy stays until an admin releases the hold.
"""

from __future__ import annotations

import secrets

from sqlalchemy.ext.asyncio import AsyncSession

from vigil.errors import ConflictError, NotFoundError
from vigil.protocol.deletion import DeletionReport, KeptRecord
from vigil.server.context import ServerContext
from vigil.server.db.accounts import TOMBSTONE_PREFIX, DeviceRepository, UserRepository, UserRow
from vigil.server.db.deletion import DeletionRepository
from vigil.server.db.pseudonyms import pseudonym
from vigil.server.services.accounts import AuthenticatedDevice
from vigil.server.services.audit import append_audit
from vigil.server.services.preservation import held_data

__all__ = ["delete_account", "delete_device", "finish_pending_deletions"]


async def _reasons_to_keep(repository: DeletionRepository, user_id: int) -> list[str]:
    """Why the account's username and metadata must stay; empty when nothing needs them."""
    reasons = []
    if await repository.open_cases_about(user_id):
        reasons.append("a safety case about this account is open")
    if await repository.unopened_vouchers_from(user_id):
        reasons.append("a known-image match from this account awaits review")
    return reasons


async def _erase_identity(ctx: ServerContext, repository: DeletionRepository, user: UserRow) -> int:
    """Deletes the account's metadata and replaces its username by a random tombstone; returns how many
    metadata records went."""
    removed = await repository.delete_metadata(user.id, user.username, pseudonym(ctx.pseudonym_key, user.id))
    user.username = f"{TOMBSTONE_PREFIX}{secrets.token_hex(6)}"
    user.band_changes_on = None
    user.deletion_pending_since_ms = None
    return removed


async def finish_pending_deletions(ctx: ServerContext, now_ms: int) -> int:
    """The deleted_accounts sweep: for each deleted account kept for an open case or unopened voucher
    that no longer has any, deletes its metadata and tombstones its username. Returns how many
    accounts it finished."""
    async with ctx.sessions() as session, session.begin():
        return await _finish_pending(ctx, session, now_ms)


async def _finish_pending(ctx: ServerContext, session: AsyncSession, now_ms: int) -> int:
    repository = DeletionRepository(session)
    finished = 0
    for user in await repository.pending_deletions():
        if await _reasons_to_keep(repository, user.id):
            continue
        removed = await _erase_identity(ctx, repository, user)
        finished += 1
        await append_audit(
            session,
            now_ms=now_ms,
            actor="system:deletion",
            action="account.deletion_finished",
            target=f"user:{user.id}",
            details={"metadata_records": removed},
        )
    return finished


async def delete_device(ctx: ServerContext, by: AuthenticatedDevice, device_id: str) -> DeletionReport:
    """Deletes one of the caller's devices (the caller's own included). Raises NotFoundError for a device
    of another account or none, ConflictError for the account's only device (delete the account)."""
    async with ctx.sessions() as session, session.begin():
        device = await DeviceRepository(session).get(device_id)
        if device is None or device.user_id != by.user_id:
            raise NotFoundError("no such device on this account")
        repository = DeletionRepository(session)
        if len(await repository.devices_of(by.user_id)) == 1:
            raise ConflictError("this is the account's only device: delete the account instead")
        _, queued = await repository.delete_devices([device_id])
    await ctx.credentials_changed(device_ids=[device_id])  # the cached credential must stop working now
    return DeletionReport(
        deleted=[
            "the device, its public keys and unused one-time keys",
            f"{queued} undelivered messages queued for it",
        ],
        kept=[],
    )


async def delete_account(ctx: ServerContext, by: AuthenticatedDevice) -> DeletionReport:
    """Deletes the caller's account as the module docstring says; the caller's credential stops working."""
    now = ctx.clock_ms()
    deleted: list[str] = []
    kept: list[KeptRecord] = []
    async with ctx.sessions() as session, session.begin():
        repository = DeletionRepository(session)
        user = await UserRepository(session).by_id(by.user_id)
        if user is None:
            raise NotFoundError("no such account")
        held = await held_data(session)
        reasons = await _reasons_to_keep(repository, by.user_id)

        device_ids = list(await repository.devices_of(by.user_id))
        devices, queued = await repository.delete_devices(device_ids)
        deleted.append(f"{devices} devices, their keys and {queued} undelivered messages")
        if await repository.delete_profile_photo(by.user_id):
            deleted.append("the profile photo")
        deleted.append(f"{await repository.delete_connections_and_blocks(by.user_id)} connections and blocks")
        deleted.append(f"membership of {await repository.leave_groups(by.user_id, now)} groups")
        deleted.append(f"{await repository.delete_pending_requests(by.user_id)} pending contact requests")
        deleted.append(f"{await repository.delete_notices_to(by.user_id)} notices")
        blob_ids = list(await repository.blobs_uploaded_by(by.user_id, held.blob_ids))
        deleted.append(f"{await repository.delete_blobs(blob_ids)} uploaded attachments")

        if by.user_id in held.user_ids:
            kept.append(
                KeptRecord(
                    what="a sealed copy, made when the hold was placed, of this account's username, the "
                    "metadata of its activity and the reported messages, and the attachments reported",
                    why="a legal preservation hold (after a report to NCMEC) covers this account",
                    until="an admin releases the hold, a year or more after it was placed; then it is erased",
                )
            )
        if reasons:
            kept.append(
                KeptRecord(
                    what="the username and the metadata of this account's activity (who it messaged and "
                    "when, contact requests, safety notices about it, reports, standing and actions)",
                    why="; ".join(reasons),
                    until="the case is closed; then retention deletes them",
                )
            )
            user.deletion_pending_since_ms = now
        else:
            removed = await _erase_identity(ctx, repository, user)
            deleted.append(f"{removed} metadata records (messages, contact requests, risk and standing)")
            deleted.append("the username")
        reports = await repository.reports_made_by(by.user_id)
        if reports:
            kept.append(
                KeptRecord(
                    what=f"{reports} reports this account made about others",
                    why="they are evidence in other accounts' safety cases",
                    until=f"{ctx.settings.report_retention_days} days after each report",
                )
            )
        closed = await repository.closed_cases_about(by.user_id)
        if closed:
            kept.append(
                KeptRecord(
                    what=f"{closed} closed safety cases about this account, as metadata",
                    why="the review decisions stay accountable (audit log)",
                    until="kept; " + ("they name no username" if not reasons else "with the username above"),
                )
            )
        await append_audit(
            session,
            now_ms=now,
            actor="system:deletion",
            action="account.deleted",
            target=f"user:{by.user_id}",
            details={"kept_for_case": bool(reasons), "held": by.user_id in held.user_ids},
        )
    await ctx.credentials_changed(user_ids=[by.user_id], device_ids=device_ids)
    for blob_id in blob_ids:
        await ctx.blobs.delete(blob_id)
    return DeletionReport(deleted=deleted, kept=kept)

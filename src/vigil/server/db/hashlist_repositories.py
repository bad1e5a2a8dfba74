"""Queries over banks, published manifests, voucher keys, vouchers, image-match cases and profile photos.
They flush when they need generated ids, never commit: the calling service owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.server.db.hashlist_models import (
    BankEntryRow,
    BankRow,
    ImageMatchCaseRow,
    ManifestRow,
    ProfilePhotoRow,
    VoucherKeyRow,
    VoucherRow,
)

__all__ = ["BankRepository", "HashListRepository", "VoucherRepository"]


class BankRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def by_name(self, name: str) -> BankRow | None:
        return await self._session.scalar(select(BankRow).where(BankRow.name == name))

    async def add(self, row: BankRow) -> BankRow:
        self._session.add(row)
        await self._session.flush()
        return row

    async def all(self) -> Sequence[BankRow]:
        return (await self._session.scalars(select(BankRow).order_by(BankRow.name))).all()

    async def entry_counts(self) -> dict[int, int]:
        rows = await self._session.execute(
            select(BankEntryRow.bank_id, func.count()).group_by(BankEntryRow.bank_id)
        )
        return {int(bank_id): int(count) for bank_id, count in rows.all()}

    async def hashes(self, bank_id: int) -> set[str]:
        return set(
            (
                await self._session.scalars(select(BankEntryRow.hash).where(BankEntryRow.bank_id == bank_id))
            ).all()
        )

    async def entries(self, bank_ids: Sequence[int]) -> Sequence[BankEntryRow]:
        if not bank_ids:
            return []
        query = select(BankEntryRow).where(BankEntryRow.bank_id.in_(bank_ids)).order_by(BankEntryRow.id)
        return (await self._session.scalars(query)).all()

    def add_entries(self, rows: Sequence[BankEntryRow]) -> None:
        self._session.add_all(rows)

    async def remove_entries(self, bank_id: int, hashes: Sequence[str], batch: int = 500) -> None:
        for start in range(0, len(hashes), batch):
            await self._session.execute(
                delete(BankEntryRow).where(
                    BankEntryRow.bank_id == bank_id, BankEntryRow.hash.in_(hashes[start : start + batch])
                )
            )


class HashListRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def manifests(self, since: int = 0, limit: int | None = None) -> Sequence[ManifestRow]:
        query = select(ManifestRow).where(ManifestRow.version > since).order_by(ManifestRow.version)
        if limit is not None:
            query = query.limit(limit)
        return (await self._session.scalars(query)).all()

    async def latest(self) -> ManifestRow | None:
        return await self._session.scalar(select(ManifestRow).order_by(ManifestRow.version.desc()).limit(1))

    async def add(self, row: ManifestRow) -> None:
        self._session.add(row)
        await self._session.flush()

    async def voucher_key(self) -> VoucherKeyRow | None:
        return await self._session.scalar(select(VoucherKeyRow).order_by(VoucherKeyRow.id.desc()).limit(1))

    async def add_voucher_key(self, row: VoucherKeyRow) -> None:
        self._session.add(row)
        await self._session.flush()


class VoucherRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, voucher_id: str) -> VoucherRow | None:
        return await self._session.get(VoucherRow, voucher_id)

    async def add(self, row: VoucherRow) -> None:
        self._session.add(row)
        await self._session.flush()

    async def unopened(self, limit: int = 100) -> Sequence[VoucherRow]:
        query = select(VoucherRow).where(VoucherRow.opened_at_ms.is_(None)).order_by(VoucherRow.created_at_ms)
        return (await self._session.scalars(query.limit(limit))).all()

    async def add_case(self, row: ImageMatchCaseRow) -> ImageMatchCaseRow:
        self._session.add(row)
        await self._session.flush()
        return row

    async def case(self, case_id: int) -> ImageMatchCaseRow | None:
        return await self._session.get(ImageMatchCaseRow, case_id)

    async def cases(self) -> Sequence[ImageMatchCaseRow]:
        query = select(ImageMatchCaseRow).order_by(ImageMatchCaseRow.priority.desc(), ImageMatchCaseRow.id)
        return (await self._session.scalars(query)).all()

    async def profile_photo(self, user_id: int) -> ProfilePhotoRow | None:
        return await self._session.get(ProfilePhotoRow, user_id)

    async def put_profile_photo(self, row: ProfilePhotoRow) -> None:
        await self._session.merge(row)

"""Known-image matching: hash banks and their entries, the published (signed) hash-list manifests
that form the transparency log, the authority-signed voucher key, stored vouchers (ciphertext only),
image-match cases, and profile photos (an unencrypted surface, matched on the server).

Nothing here lets the server see an image sent end to end: a voucher is encrypted to the safety team's
key, and a case keeps its image in that same encrypted form.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from vigil.server.db.base import Base

__all__ = [
    "BankEntryRow",
    "BankRepository",
    "BankRow",
    "HashListRepository",
    "ImageMatchCaseRow",
    "ManifestRow",
    "ProfilePhotoRow",
    "VoucherKeyRow",
    "VoucherRepository",
    "VoucherRow",
]


class BankRow(Base):
    __tablename__ = "hash_banks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # vigil.safety.hashing.banks.BankKind value
    threshold: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    # Bumped by every change to the bank or its entries: with the other columns it tells a server whether
    # the matching index it holds (in memory or saved on disk) is still the banks' current state.
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class BankEntryRow(Base):
    __tablename__ = "hash_bank_entries"
    __table_args__ = (UniqueConstraint("bank_id", "hash", name="uq_hash_bank_entries_bank_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("hash_banks.id", ondelete="CASCADE"), index=True)
    hash: Mapped[str] = mapped_column(String(64))  # PDQ hex
    labels: Mapped[str] = mapped_column(String(1000), default="")  # JSON list
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class ManifestRow(Base):
    """One published version: the signed manifest bytes, and the log head after appending it."""

    __tablename__ = "hashlist_manifests"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    signed: Mapped[bytes] = mapped_column(LargeBinary)
    root: Mapped[str] = mapped_column(String(64))
    log_head: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[int] = mapped_column(BigInteger)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class VoucherKeyRow(Base):
    """The safety team's voucher public key with the authority's signature; the newest row is served."""

    __tablename__ = "hashlist_voucher_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class VoucherRow(Base):
    __tablename__ = "vouchers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    device_id: Mapped[str] = mapped_column(String(64))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    mac: Mapped[bytes] = mapped_column(LargeBinary)
    ephemeral_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    opened_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    case_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class ImageMatchCaseRow(Base):
    """A high-priority case opened by a known-image match (an opened voucher or a refused profile photo).

    `image_*` hold the image encrypted to the safety team's voucher key (the voucher itself for a voucher
    case), so the database never holds it in the clear; reviewers open it with the team's key."""

    __tablename__ = "image_match_cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(16))  # "voucher" | "profile_photo"
    subject_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    reporter_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    priority: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), index=True)
    direction: Mapped[str] = mapped_column(String(16))
    bank: Mapped[str] = mapped_column(String(255))
    entry_hash: Mapped[str] = mapped_column(String(64))
    pdq: Mapped[str] = mapped_column(String(64))
    distance: Mapped[int] = mapped_column(Integer)
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    verification: Mapped[str] = mapped_column(String(300))
    message_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    voucher_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    mime: Mapped[str] = mapped_column(String(100))
    image_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    image_mac: Mapped[bytes] = mapped_column(LargeBinary)
    image_ephemeral_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    # The reviewers' case it opened or joined: deciding that case closes this record (`state` takes the
    # case's closed state), which starts its retention.
    case_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)


class ProfilePhotoRow(Base):
    __tablename__ = "profile_photos"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    mime: Mapped[str] = mapped_column(String(100))
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)


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

    async def revisions(self) -> list[tuple[int, str, int, bool, int]]:
        """(id, kind, threshold, enabled, revision) of every bank, by id: changes whenever what the
        enabled banks match changes."""
        rows = await self._session.execute(
            select(BankRow.id, BankRow.kind, BankRow.threshold, BankRow.enabled, BankRow.revision).order_by(
                BankRow.id
            )
        )
        return [(int(i), str(k), int(t), bool(e), int(r)) for i, k, t, e, r in rows.all()]

    async def bump_revision(self, bank_id: int) -> None:
        """Marks the bank changed (an increment in the database, so concurrent changes each count)."""
        await self._session.execute(
            update(BankRow).where(BankRow.id == bank_id).values(revision=BankRow.revision + 1)
        )

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

    async def cases_about(self, subject_user_id: int) -> Sequence[ImageMatchCaseRow]:
        rows = await self._session.scalars(
            select(ImageMatchCaseRow)
            .where(ImageMatchCaseRow.subject_user_id == subject_user_id)
            .order_by(ImageMatchCaseRow.id)
        )
        return rows.all()

    async def set_state_of_case_records(
        self, case_id: int, state: str, *, from_states: Sequence[str]
    ) -> list[int]:
        """Sets `state` on the image-match records of reviewers' case `case_id` now in one of
        `from_states`; returns their ids."""
        rows = await self._session.execute(
            update(ImageMatchCaseRow)
            .where(ImageMatchCaseRow.case_id == case_id, ImageMatchCaseRow.state.in_(list(from_states)))
            .values(state=state)
            .returning(ImageMatchCaseRow.id)
        )
        return sorted(int(i) for i in rows.scalars().all())

    async def move_case_records(self, source_case_id: int, target_case_id: int) -> list[int]:
        """Moves the image-match records of one reviewers' case to another (a merge); returns their ids."""
        rows = await self._session.execute(
            update(ImageMatchCaseRow)
            .where(ImageMatchCaseRow.case_id == source_case_id)
            .values(case_id=target_case_id)
            .returning(ImageMatchCaseRow.id)
        )
        return sorted(int(i) for i in rows.scalars().all())

    async def cases(self) -> Sequence[ImageMatchCaseRow]:
        query = select(ImageMatchCaseRow).order_by(ImageMatchCaseRow.priority.desc(), ImageMatchCaseRow.id)
        return (await self._session.scalars(query)).all()

    async def profile_photo(self, user_id: int) -> ProfilePhotoRow | None:
        return await self._session.get(ProfilePhotoRow, user_id)

    async def put_profile_photo(self, row: ProfilePhotoRow) -> None:
        await self._session.merge(row)

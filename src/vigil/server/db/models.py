"""Database rows. Nothing here holds plaintext or private key material: only public keys, hashes of
credentials, ciphertexts, franking commitments and tags, and metadata the server legitimately sees."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Base",
    "BlobFetcherRow",
    "BlobRow",
    "DeviceRow",
    "GroupMemberRow",
    "GroupRow",
    "MessageRow",
    "OneTimeKeyRow",
    "QueueRow",
    "UserRow",
]

_NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=_NAMING)


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(32), unique=True)
    age_band: Mapped[str] = mapped_column(String(16))
    # The day the account becomes an adult, so the band can be recomputed without keeping the birth date.
    adult_on: Mapped[str] = mapped_column(String(10))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class DeviceRow(Base):
    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    curve25519: Mapped[str] = mapped_column(String(64))
    ed25519: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))
    credential_sha256: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class OneTimeKeyRow(Base):
    __tablename__ = "one_time_keys"
    __table_args__ = (UniqueConstraint("device_id", "key_id", "is_fallback", name="uq_otk_device_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    key_id: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))
    is_fallback: Mapped[bool] = mapped_column(Boolean, default=False)


class MessageRow(Base):
    """One accepted message: its franking commitment and the server's tag, never its content."""

    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("sender_user_id", "client_id", name="uq_messages_sender_client"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(64))
    sender_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    sender_device_id: Mapped[str] = mapped_column(String(64))
    conversation: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(16))
    size_bucket: Mapped[int] = mapped_column(Integer)
    commitment: Mapped[bytes] = mapped_column(LargeBinary(32))
    franking_tag: Mapped[bytes] = mapped_column(LargeBinary(32))
    server_ts_ms: Mapped[int] = mapped_column(BigInteger)
    device_count: Mapped[int] = mapped_column(Integer)


class QueueRow(Base):
    """One ciphertext waiting for one device; deleted when that device acks it."""

    __tablename__ = "queue"
    # AUTOINCREMENT on SQLite: ids are never reused after a delete, so "after entry N" stays correct.
    __table_args__ = (Index("ix_queue_device_id_id", "device_id", "id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    message_type: Mapped[int] = mapped_column(Integer)
    body: Mapped[bytes] = mapped_column(LargeBinary)


class BlobRow(Base):
    """An encrypted attachment blob (bytes on disk under the data dir, named by `id`)."""

    __tablename__ = "blobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    uploader_device_id: Mapped[str] = mapped_column(String(64))
    uploader_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    size: Mapped[int] = mapped_column(BigInteger)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    expires_at_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    attached: Mapped[bool] = mapped_column(Boolean, default=False)


class BlobFetcherRow(Base):
    """A device that may still fetch a blob; when none remain, the blob is deleted."""

    __tablename__ = "blob_fetchers"

    blob_id: Mapped[str] = mapped_column(ForeignKey("blobs.id", ondelete="CASCADE"), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)


class GroupRow(Base):
    """A group as the server knows it: an opaque id. Its name and topic exist only inside ciphertexts."""

    __tablename__ = "groups"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_by_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class GroupMemberRow(Base):
    """Membership: the server needs it to fan out group messages and, later, for safety signals."""

    __tablename__ = "group_members"

    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(16))
    joined_at_ms: Mapped[int] = mapped_column(BigInteger)

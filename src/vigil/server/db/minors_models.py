"""Rows of the minors' protective defaults and the behavioural layer: contact requests, connections,
the metadata event log, risk state and signed safety notices. Metadata only: nothing here holds content.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vigil.server.db.models import Base

__all__ = [
    "ConnectionRow",
    "ContactRequestRow",
    "MetadataEventRow",
    "RiskStateRow",
    "SafetyNoticeRow",
]


class ContactRequestRow(Base):
    """Who asked whom, when, and the answer. No text, no media."""

    __tablename__ = "contact_requests"
    __table_args__ = (Index("ix_contact_requests_requester_created", "requester_user_id", "created_at_ms"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    requester_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    recipient_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    state: Mapped[str] = mapped_column(String(16))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    answered_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class ConnectionRow(Base):
    """An accepted connection, stored once with `low_user_id < high_user_id`."""

    __tablename__ = "connections"

    low_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    high_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class MetadataEventRow(Base):
    """One `vigil.safety.behavior.events` event, in the columns of its compact record (`k t s r g b c why`).
    Users are named by username, as in the behaviour layer. Deleted after the retention limit."""

    __tablename__ = "metadata_events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    kind: Mapped[str] = mapped_column(String(24))
    actor: Mapped[str] = mapped_column(String(32), index=True)
    target: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    group_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    size_bucket: Mapped[int | None] = mapped_column(Integer, nullable=True)
    content: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(24), nullable=True)


class RiskStateRow(Base):
    """The highest protective level applied to an account so far, with the assessment behind it."""

    __tablename__ = "risk_state"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    level: Mapped[str] = mapped_column(String(32))
    score: Mapped[float] = mapped_column(Float)
    reasons: Mapped[str] = mapped_column(Text)  # JSON list of sentences
    case_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)


class SafetyNoticeRow(Base):
    """A signed notice for one account: the exact signed payload and its signature."""

    __tablename__ = "safety_notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    subject_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)

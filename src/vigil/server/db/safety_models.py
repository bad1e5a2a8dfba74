"""Rows of the trust & safety side: blocks, account standing and actions, notices, reports and their
items, cases, reviewer accounts and console sessions, and the hash-chained audit log.

Reported content is the only plaintext the server ever holds; it is stored here AES-GCM encrypted
(`*_enc` columns, see `vigil.server.services.evidence`) and deleted when its retention runs out.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vigil.server.db.models import Base

__all__ = [
    "AccountActionRow",
    "AccountStandingRow",
    "AuditHeadRow",
    "AuditRow",
    "BlockRow",
    "CaseNoteRow",
    "CaseRow",
    "ConsoleSessionRow",
    "NoticeRow",
    "ReportItemRow",
    "ReportRow",
    "ReviewerRow",
]


class BlockRow(Base):
    __tablename__ = "blocks"

    blocker_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    blocked_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class AccountStandingRow(Base):
    """Absent row = active. `standing` is a `vigil.safety.policy.Standing`."""

    __tablename__ = "account_standing"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    standing: Mapped[str] = mapped_column(String(16))
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)


class AccountActionRow(Base):
    __tablename__ = "account_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    case_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reviewer_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class NoticeRow(Base):
    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(String(1000))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class ReviewerRow(Base):
    __tablename__ = "reviewers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class CaseRow(Base):
    """Everything reported about one account while the case is open."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    priority: Mapped[int] = mapped_column(Integer)
    top_reason: Mapped[str] = mapped_column(String(16))
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("reviewers.id"), nullable=True)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)


class ReportRow(Base):
    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    reporter_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reported_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    reason: Mapped[str] = mapped_column(String(16))
    reporter_age_band: Mapped[str] = mapped_column(String(16))
    note_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    expires_at_ms: Mapped[int] = mapped_column(BigInteger, index=True)


class ReportItemRow(Base):
    """One reported message. `content_enc` is the encrypted payload JSON; `attachment_enc` the
    encrypted attachment plaintext. Metadata columns hold what the server saw (or, unverified, what
    was claimed)."""

    __tablename__ = "report_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    message_id: Mapped[str] = mapped_column(String(64))
    sender: Mapped[str | None] = mapped_column(String(32), nullable=True)
    conversation: Mapped[str | None] = mapped_column(String(80), nullable=True)
    server_ts_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    kind: Mapped[str | None] = mapped_column(String(16), nullable=True)
    verified: Mapped[bool] = mapped_column(Boolean)
    verdict: Mapped[str] = mapped_column(String(200))
    content_enc: Mapped[bytes] = mapped_column(LargeBinary)
    attachment_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    attachment_mime: Mapped[str | None] = mapped_column(String(100), nullable=True)


class CaseNoteRow(Base):
    __tablename__ = "case_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("reviewers.id"))
    body_enc: Mapped[bytes] = mapped_column(LargeBinary)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class ConsoleSessionRow(Base):
    """A signed-in reviewer. Only the SHA-256 of the session cookie is stored."""

    __tablename__ = "console_sessions"

    token_sha256: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("reviewers.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    revealed: Mapped[str] = mapped_column(Text, default="")
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    expires_at_ms: Mapped[int] = mapped_column(BigInteger)


class AuditRow(Base):
    """Append-only. `entry_hash = SHA-256(prev_hash || entry)`; ids run 1, 2, 3, ... without gaps."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts_ms: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(80), index=True)
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    entry_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditHeadRow(Base):
    """One row (id 1): the last sequence number and hash, updated in the appending transaction; it is
    also the lock that serialises appends. A truncated tail no longer matches it."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[bytes] = mapped_column(LargeBinary(32))

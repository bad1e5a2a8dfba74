"""hash banks, published hash-list manifests, voucher key, vouchers, image-match cases, profile photos

Revision ID: 0004_hashlists
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_hashlists"
down_revision = "0001"
branch_labels = None
depends_on = None


def _users_fk(column: str, table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], ["users.id"], name=op.f(f"fk_{table}_{column}_users"))


def upgrade() -> None:
    op.create_table(
        "hash_banks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hash_banks")),
        sa.UniqueConstraint("name", name=op.f("uq_hash_banks_name")),
    )
    op.create_table(
        "hash_bank_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("bank_id", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("labels", sa.String(length=1000), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["bank_id"],
            ["hash_banks.id"],
            name=op.f("fk_hash_bank_entries_bank_id_hash_banks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hash_bank_entries")),
        sa.UniqueConstraint("bank_id", "hash", name="uq_hash_bank_entries_bank_hash"),
    )
    op.create_index(op.f("ix_hash_bank_entries_bank_id"), "hash_bank_entries", ["bank_id"])
    op.create_table(
        "hashlist_manifests",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("signed", sa.LargeBinary(), nullable=False),
        sa.Column("root", sa.String(length=64), nullable=False),
        sa.Column("log_head", sa.String(length=64), nullable=False),
        sa.Column("issued_at", sa.BigInteger(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_hashlist_manifests")),
    )
    op.create_table(
        "hashlist_voucher_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hashlist_voucher_keys")),
    )
    op.create_table(
        "vouchers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("mac", sa.LargeBinary(), nullable=False),
        sa.Column("ephemeral_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("opened_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=True),
        _users_fk("user_id", "vouchers"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vouchers")),
    )
    op.create_index(op.f("ix_vouchers_user_id"), "vouchers", ["user_id"])
    op.create_index(op.f("ix_vouchers_opened_at_ms"), "vouchers", ["opened_at_ms"])
    op.create_table(
        "image_match_cases",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("subject_user_id", sa.Integer(), nullable=False),
        sa.Column("reporter_user_id", sa.Integer(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("bank", sa.String(length=255), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.Column("pdq", sa.String(length=64), nullable=False),
        sa.Column("distance", sa.Integer(), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("verification", sa.String(length=300), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=True),
        sa.Column("voucher_id", sa.String(length=36), nullable=True),
        sa.Column("mime", sa.String(length=100), nullable=False),
        sa.Column("image_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("image_mac", sa.LargeBinary(), nullable=False),
        sa.Column("image_ephemeral_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        _users_fk("subject_user_id", "image_match_cases"),
        _users_fk("reporter_user_id", "image_match_cases"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_image_match_cases")),
    )
    op.create_index(op.f("ix_image_match_cases_subject_user_id"), "image_match_cases", ["subject_user_id"])
    op.create_index(op.f("ix_image_match_cases_state"), "image_match_cases", ["state"])
    op.create_index(op.f("ix_image_match_cases_voucher_id"), "image_match_cases", ["voucher_id"])
    op.create_table(
        "profile_photos",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("mime", sa.String(length=100), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        _users_fk("user_id", "profile_photos"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_profile_photos")),
    )


def downgrade() -> None:
    for table in (
        "profile_photos",
        "image_match_cases",
        "vouchers",
        "hashlist_voucher_keys",
        "hashlist_manifests",
        "hash_bank_entries",
        "hash_banks",
    ):
        op.drop_table(table)

"""CyberTipline filings, their files, the per-case filing lease, preservation holds

Revision ID: 0009_cybertip_filings
Revises: 0008_bad_faith_reporters
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_cybertip_filings"
down_revision = "0008_bad_faith_reporters"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cybertip_filings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("subject_user_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("incident_type", sa.String(length=100), nullable=False),
        sa.Column("base_url", sa.String(length=255), nullable=False),
        sa.Column("is_test", sa.Boolean(), nullable=False),
        sa.Column("report_enc", sa.LargeBinary(), nullable=False),
        sa.Column("ncmec_report_id", sa.BigInteger(), nullable=True),
        sa.Column("ncmec_code", sa.Integer(), nullable=True),
        sa.Column("ncmec_description", sa.String(length=500), nullable=True),
        sa.Column("ncmec_request_id", sa.String(length=100), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("recoveries", sa.Integer(), nullable=False),
        sa.Column("filed_by", sa.String(length=80), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("submitted_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("finished_at_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_cybertip_filings_case_id_cases")),
        sa.ForeignKeyConstraint(
            ["subject_user_id"], ["users.id"], name=op.f("fk_cybertip_filings_subject_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cybertip_filings")),
    )
    op.create_index(op.f("ix_cybertip_filings_case_id"), "cybertip_filings", ["case_id"])
    op.create_index(op.f("ix_cybertip_filings_subject_user_id"), "cybertip_filings", ["subject_user_id"])
    op.create_index(op.f("ix_cybertip_filings_state"), "cybertip_filings", ["state"])
    op.create_index(op.f("ix_cybertip_filings_ncmec_report_id"), "cybertip_filings", ["ncmec_report_id"])
    op.create_table(
        "cybertip_filing_files",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("filing_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("mime", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("md5", sa.String(length=32), nullable=False),
        sa.Column("pdq", sa.String(length=64), nullable=True),
        sa.Column("classification", sa.String(length=4), nullable=True),
        sa.Column("annotations", sa.String(length=400), nullable=False),
        sa.Column("viewed_by_esp", sa.Boolean(), nullable=False),
        sa.Column("publicly_available", sa.Boolean(), nullable=False),
        sa.Column("uploaded_to_esp_ms", sa.BigInteger(), nullable=True),
        sa.Column("additional_info", sa.Text(), nullable=False),
        sa.Column("ncmec_file_id", sa.String(length=64), nullable=True),
        sa.Column("uploaded_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("details_sent", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["filing_id"],
            ["cybertip_filings.id"],
            name=op.f("fk_cybertip_filing_files_filing_id_cybertip_filings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cybertip_filing_files")),
    )
    op.create_index(op.f("ix_cybertip_filing_files_filing_id"), "cybertip_filing_files", ["filing_id"])
    op.create_table(
        "cybertip_leases",
        sa.Column("case_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("until_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_cybertip_leases")),
    )
    op.create_table(
        "preservation_holds",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("subject_user_id", sa.Integer(), nullable=False),
        sa.Column("filing_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("blob_ids", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("hold_until_ms", sa.BigInteger(), nullable=False),
        sa.Column("released_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("released_by", sa.String(length=80), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_preservation_holds_case_id_cases")),
        sa.ForeignKeyConstraint(
            ["subject_user_id"], ["users.id"], name=op.f("fk_preservation_holds_subject_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["filing_id"],
            ["cybertip_filings.id"],
            name=op.f("fk_preservation_holds_filing_id_cybertip_filings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_preservation_holds")),
    )
    op.create_index(op.f("ix_preservation_holds_case_id"), "preservation_holds", ["case_id"])
    op.create_index(op.f("ix_preservation_holds_subject_user_id"), "preservation_holds", ["subject_user_id"])
    op.create_index(op.f("ix_preservation_holds_released_at_ms"), "preservation_holds", ["released_at_ms"])


def downgrade() -> None:
    op.drop_table("preservation_holds")
    op.drop_table("cybertip_leases")
    op.drop_table("cybertip_filing_files")
    op.drop_table("cybertip_filings")

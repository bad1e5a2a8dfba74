"""case evidence under per-case keys (action notes, risk-case timelines) that the audit log references
instead of copying

Revision ID: 0010_case_evidence
Revises: 0009_cybertip_filings
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_case_evidence"
down_revision = "0009_cybertip_filings"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_keys",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_case_keys_case_id_cases")),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_case_keys")),
    )
    op.create_table(
        "case_evidence",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("author", sa.String(length=80), nullable=False),
        sa.Column("body_enc", sa.LargeBinary(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_case_evidence_case_id_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_evidence")),
    )
    op.create_index(op.f("ix_case_evidence_case_id"), "case_evidence", ["case_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_case_evidence_case_id"), table_name="case_evidence")
    op.drop_table("case_evidence")
    op.drop_table("case_keys")

"""the metadata event log keeps no message size bucket (no risk feature reads it)

Revision ID: 0011_no_size_bucket_in_metadata
Revises: 0010_case_evidence
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_no_size_bucket_in_metadata"
down_revision = "0010_case_evidence"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("metadata_events", schema=None) as batch_op:
        batch_op.drop_column("size_bucket")


def downgrade() -> None:
    with op.batch_alter_table("metadata_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("size_bucket", sa.Integer(), nullable=True))

"""blob_chunks: blob ciphertext as chunked rows, for the database blob backend (VIGIL_BLOB_BACKEND=postgres)

Revision ID: 0016_blob_chunks
Revises: 0015_account_labels
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_blob_chunks"
down_revision = "0015_account_labels"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blob_chunks",
        sa.Column("blob_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("blob_id", "seq"),
    )


def downgrade() -> None:
    op.drop_table("blob_chunks")

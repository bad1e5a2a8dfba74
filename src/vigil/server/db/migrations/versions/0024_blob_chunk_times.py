"""blob_chunks.created_at_ms: when each chunk was written, so a sweep can tell an abandoned upload's
chunks from one still arriving

Revision ID: 0024_blob_chunk_times
Revises: 0023_risk_history
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024_blob_chunk_times"
down_revision = "0023_risk_history"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("blob_chunks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("created_at_ms", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("blob_chunks", schema=None) as batch_op:
        batch_op.drop_column("created_at_ms")

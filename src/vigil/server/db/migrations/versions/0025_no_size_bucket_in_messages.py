"""messages.size_bucket dropped: no feature reads a delivery record's size class (issue 16: less to begin
with; the metadata log stopped keeping it in 0011)

Revision ID: 0025_no_size_bucket_in_messages
Revises: 0024_blob_chunk_times
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025_no_size_bucket_in_messages"
down_revision = "0024_blob_chunk_times"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("size_bucket")


def downgrade() -> None:
    # Rows kept from before carry no size: the column comes back empty (0), not reconstructed.
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("size_bucket", sa.Integer(), nullable=False, server_default="0"))

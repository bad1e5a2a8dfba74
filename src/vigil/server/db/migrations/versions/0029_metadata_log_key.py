"""the metadata log records the fingerprint of the pseudonym key its accounts are named under
(metadata_log_key), so a start-up with nothing to rotate does not rescan the log

Revision ID: 0029_metadata_log_key
Revises: 0028_group_invite_links
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0029_metadata_log_key"
down_revision = "0028_group_invite_links"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "metadata_log_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_fingerprint", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    # The one row, present before any start-up (two starting at once then only update it); NULL: not yet
    # recorded, so the next start-up renames from any previous key as before and records its own.
    op.bulk_insert(table, [{"id": 1, "key_fingerprint": None}])


def downgrade() -> None:
    op.drop_table("metadata_log_key")

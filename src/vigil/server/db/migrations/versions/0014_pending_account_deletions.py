"""a deleted account kept for a hold or case is marked, so a sweep finishes its deletion afterwards

Revision ID: 0014_pending_account_deletions
Revises: 0013_policies
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_pending_account_deletions"
down_revision = "0013_policies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deletion_pending_since_ms", sa.BigInteger(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_users_deletion_pending_since_ms"), ["deletion_pending_since_ms"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_deletion_pending_since_ms"))
        batch_op.drop_column("deletion_pending_since_ms")

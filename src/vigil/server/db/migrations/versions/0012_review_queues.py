"""review queues: a case's queue, lapsing claims, first-action and decision times; reviewers' queues

Revision ID: 0012_review_queues
Revises: 0011_no_size_bucket_in_metadata
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_review_queues"
down_revision = "0011_no_size_bucket_in_metadata"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("queue", sa.String(length=24), server_default="general", nullable=False)
        )
        batch_op.add_column(sa.Column("claim_expires_at_ms", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("first_action_at_ms", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("decided_at_ms", sa.BigInteger(), nullable=True))
        batch_op.create_index(batch_op.f("ix_cases_queue"), ["queue"], unique=False)
    with op.batch_alter_table("reviewers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("queues", sa.String(length=200), server_default="", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("reviewers", schema=None) as batch_op:
        batch_op.drop_column("queues")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cases_queue"))
        batch_op.drop_column("decided_at_ms")
        batch_op.drop_column("first_action_at_ms")
        batch_op.drop_column("claim_expires_at_ms")
        batch_op.drop_column("queue")

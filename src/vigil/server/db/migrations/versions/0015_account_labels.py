"""persistent account labels with an optional expiry

Revision ID: 0015_account_labels
Revises: 0014_pending_account_deletions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_account_labels"
down_revision = "0014_pending_account_deletions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "account_labels",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=40), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=True),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_account_labels_user_id_users")),
        sa.ForeignKeyConstraint(
            ["reviewer_id"], ["reviewers.id"], name=op.f("fk_account_labels_reviewer_id_reviewers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_labels")),
    )
    with op.batch_alter_table("account_labels", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_account_labels_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("account_labels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_labels_user_id"))
    op.drop_table("account_labels")

"""group membership history: when each account joined and left each group (reports of group messages
are verified against membership at the message's time); current members are backfilled as joined at
their recorded join time

Revision ID: 0006_group_membership_periods
Revises: 0002_groups, 0003_reports, 0004_hashlists, 0005_minors
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_group_membership_periods"
down_revision = ("0002_groups", "0003_reports", "0004_hashlists", "0005_minors")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "group_membership_periods",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("group_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("joined_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("left_at_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["groups.id"],
            name=op.f("fk_group_membership_periods_group_id_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_group_membership_periods_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_membership_periods")),
    )
    op.create_index(
        "ix_group_membership_periods_group_user", "group_membership_periods", ["group_id", "user_id"]
    )
    op.execute(
        "INSERT INTO group_membership_periods (group_id, user_id, joined_at_ms, left_at_ms) "
        "SELECT group_id, user_id, joined_at_ms, NULL FROM group_members"
    )


def downgrade() -> None:
    op.drop_index("ix_group_membership_periods_group_user", table_name="group_membership_periods")
    op.drop_table("group_membership_periods")

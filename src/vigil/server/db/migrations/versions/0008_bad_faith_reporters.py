"""reporters marked as reporting in bad faith

Revision ID: 0008_bad_faith_reporters
Revises: 0007_age_band_change_date
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_bad_faith_reporters"
down_revision = "0007_age_band_change_date"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bad_faith_reporters",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("marked_by_reviewer_id", sa.Integer(), nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_bad_faith_reporters_user_id_users")),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_bad_faith_reporters")),
    )


def downgrade() -> None:
    op.drop_table("bad_faith_reporters")

"""risk assessments over time per account (score, level, model, reasons), for investigations

Revision ID: 0023_risk_history
Revises: 0022_job_leases
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023_risk_history"
down_revision = "0022_job_leases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "risk_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("level", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=40), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_risk_history_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_history")),
    )
    with op.batch_alter_table("risk_history", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_risk_history_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_risk_history_at_ms"), ["at_ms"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("risk_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_risk_history_at_ms"))
        batch_op.drop_index(batch_op.f("ix_risk_history_user_id"))
    op.drop_table("risk_history")

"""the policy list decisions cite; a case's and an account action's policy

Revision ID: 0013_policies
Revises: 0012_review_queues
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_policies"
down_revision = "0012_review_queues"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "policies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policies")),
        sa.UniqueConstraint("code", name=op.f("uq_policies_code")),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("decision_policy_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_cases_decision_policy_id_policies"), "policies", ["decision_policy_id"], ["id"]
        )
    with op.batch_alter_table("account_actions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("policy_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("account_actions", schema=None) as batch_op:
        batch_op.drop_column("policy_id")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_cases_decision_policy_id_policies"), type_="foreignkey")
        batch_op.drop_column("decision_policy_id")
    op.drop_table("policies")

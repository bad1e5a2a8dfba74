"""reports dismissed one by one (bulk dismissal of duplicate reports about one item): when, by whom,
under which policy

Revision ID: 0019_report_dismissals
Revises: 0018_metadata_pseudonyms
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019_report_dismissals"
down_revision = "0018_metadata_pseudonyms"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dismissed_at_ms", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("dismissed_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("dismissed_policy_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_reports_dismissed_by_reviewers"), "reviewers", ["dismissed_by"], ["id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_reports_dismissed_policy_id_policies"), "policies", ["dismissed_policy_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_reports_dismissed_policy_id_policies"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_reports_dismissed_by_reviewers"), type_="foreignkey")
        batch_op.drop_column("dismissed_policy_id")
        batch_op.drop_column("dismissed_by")
        batch_op.drop_column("dismissed_at_ms")

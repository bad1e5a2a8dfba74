"""hash_banks.revision: bumped by every change to a bank, so a server knows when its matching index is stale

Revision ID: 0020_hash_bank_revision
Revises: 0019_report_dismissals
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020_hash_bank_revision"
down_revision = "0019_report_dismissals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hash_banks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("hash_banks", schema=None) as batch_op:
        batch_op.drop_column("revision")

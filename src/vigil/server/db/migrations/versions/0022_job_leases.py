"""job_leases: one process at a time runs a periodic job that must not run twice (the risk scoring)

Revision ID: 0022_job_leases
Revises: 0021_preserved_copies
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022_job_leases"
down_revision = "0021_preserved_copies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_leases",
        sa.Column("job", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("until_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("job", name=op.f("pk_job_leases")),
    )


def downgrade() -> None:
    op.drop_table("job_leases")

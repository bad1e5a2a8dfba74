"""preservation_holds.evidence_id: the case evidence item sealing the copy a hold keeps

Holds placed before this revision kept their data in place; the server copies them into their cases at
start-up (`vigil.server.services.preservation.copy_uncopied_holds`) before any retention sweep runs.

Revision ID: 0021_preserved_copies
Revises: 0020_hash_bank_revision
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021_preserved_copies"
down_revision = "0020_hash_bank_revision"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("preservation_holds") as batch:
        batch.add_column(sa.Column("evidence_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("preservation_holds") as batch:
        batch.drop_column("evidence_id")

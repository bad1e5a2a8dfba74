"""group invite links (group_invite_links): a group's link by the SHA-256 of its token

Revision ID: 0028_group_invite_links
Revises: 0027_image_match_case_link
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028_group_invite_links"
down_revision = "0027_image_match_case_link"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "group_invite_links",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("group_id", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["groups.id"],
            name=op.f("fk_group_invite_links_group_id_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_invite_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_group_invite_links_token_hash")),
    )
    with op.batch_alter_table("group_invite_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_group_invite_links_group_id"), ["group_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("group_invite_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_group_invite_links_group_id"))
    op.drop_table("group_invite_links")

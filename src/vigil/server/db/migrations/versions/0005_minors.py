"""minors' protective defaults and behavioural risk: contact requests, connections, metadata event log,
risk state, signed safety notices

Revision ID: 0005_minors
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_minors"
down_revision = "0001"
branch_labels = None
depends_on = None


def _users_fk(column: str, table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], ["users.id"], name=op.f(f"fk_{table}_{column}_users"))


def upgrade() -> None:
    op.create_table(
        "contact_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("requester_user_id", sa.Integer(), nullable=False),
        sa.Column("recipient_user_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("answered_at_ms", sa.BigInteger(), nullable=True),
        _users_fk("requester_user_id", "contact_requests"),
        _users_fk("recipient_user_id", "contact_requests"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_requests")),
    )
    op.create_index(
        "ix_contact_requests_requester_created", "contact_requests", ["requester_user_id", "created_at_ms"]
    )
    op.create_index(op.f("ix_contact_requests_recipient_user_id"), "contact_requests", ["recipient_user_id"])
    op.create_table(
        "connections",
        sa.Column("low_user_id", sa.Integer(), nullable=False),
        sa.Column("high_user_id", sa.Integer(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        _users_fk("low_user_id", "connections"),
        _users_fk("high_user_id", "connections"),
        sa.PrimaryKeyConstraint("low_user_id", "high_user_id", name=op.f("pk_connections")),
    )
    op.create_index(op.f("ix_connections_high_user_id"), "connections", ["high_user_id"])
    op.create_table(
        "metadata_events",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("actor", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=32), nullable=True),
        sa.Column("group_id", sa.String(length=40), nullable=True),
        sa.Column("size_bucket", sa.Integer(), nullable=True),
        sa.Column("content", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.String(length=24), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metadata_events")),
    )
    op.create_index(op.f("ix_metadata_events_at_ms"), "metadata_events", ["at_ms"])
    op.create_index(op.f("ix_metadata_events_actor"), "metadata_events", ["actor"])
    op.create_index(op.f("ix_metadata_events_target"), "metadata_events", ["target"])
    op.create_table(
        "risk_state",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(length=32), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        _users_fk("user_id", "risk_state"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_risk_state")),
    )
    op.create_table(
        "safety_notices",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("subject_user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("signature", sa.LargeBinary(length=64), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        _users_fk("user_id", "safety_notices"),
        _users_fk("subject_user_id", "safety_notices"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_safety_notices")),
    )
    op.create_index(op.f("ix_safety_notices_user_id"), "safety_notices", ["user_id"])


def downgrade() -> None:
    op.drop_table("safety_notices")
    op.drop_table("risk_state")
    op.drop_table("metadata_events")
    op.drop_table("connections")
    op.drop_table("contact_requests")

"""an image-match record names the reviewers' case it opened or joined (image_match_cases.case_id), so
deciding that case closes it and the image_matches retention sweep applies

Revision ID: 0027_image_match_case_link
Revises: 0026_shared_group_bodies
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027_image_match_case_link"
down_revision = "0026_shared_group_bodies"
branch_labels = None
depends_on = None

_CLOSED_STATES = ("actioned", "dismissed")


def upgrade() -> None:
    with op.batch_alter_table("image_match_cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("case_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_image_match_cases_case_id", ["case_id"], unique=False)
    _link_existing_records()


def _link_existing_records() -> None:
    """Links each record to the case it joined: the oldest non-appeal case about its subject that was
    open when the record was made (created by then, not decided before it), else the subject's latest
    case; a record whose case was since decided takes its state (no path closed one before this)."""
    connection = op.get_bind()
    records = connection.execute(
        sa.text("SELECT id, subject_user_id, created_at_ms FROM image_match_cases WHERE case_id IS NULL")
    ).all()
    for record_id, subject, created_at in records:
        cases = connection.execute(
            sa.text(
                "SELECT id, state, created_at_ms, decided_at_ms FROM cases "
                "WHERE subject_user_id = :subject AND queue != 'appeals' ORDER BY id"
            ),
            {"subject": subject},
        ).all()
        if not cases:
            continue
        joined = [
            c
            for c in cases
            if c.created_at_ms <= created_at and (c.decided_at_ms or created_at) >= created_at
        ]
        case = joined[0] if joined else cases[-1]
        state = case.state if case.state in _CLOSED_STATES else None
        connection.execute(
            sa.text(
                "UPDATE image_match_cases SET case_id = :case_id, state = COALESCE(:state, state) "
                "WHERE id = :id"
            ),
            {"case_id": case.id, "state": state, "id": record_id},
        )


def downgrade() -> None:
    with op.batch_alter_table("image_match_cases", schema=None) as batch_op:
        batch_op.drop_index("ix_image_match_cases_case_id")
        batch_op.drop_column("case_id")

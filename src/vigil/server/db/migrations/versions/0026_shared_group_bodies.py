"""a group message's ciphertext is stored once (messages.shared_body), its queue entries have no body

Revision ID: 0026_shared_group_bodies
Revises: 0025_no_size_bucket_in_messages
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026_shared_group_bodies"
down_revision = "0025_no_size_bucket_in_messages"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("shared_body", sa.LargeBinary(), nullable=True))
    _rebuild_queue(nullable_body=True)


def _rebuild_queue(*, nullable_body: bool) -> None:
    """Batch mode rebuilds the table on SQLite: keep AUTOINCREMENT and its counter, so an entry id
    already handed out (and acknowledged) is never given to a new entry."""
    connection = op.get_bind()
    sqlite = connection.dialect.name == "sqlite"
    counter = None
    if sqlite:
        counter = connection.execute(sa.text("SELECT seq FROM sqlite_sequence WHERE name = 'queue'")).scalar()
    with op.batch_alter_table("queue", schema=None, table_kwargs={"sqlite_autoincrement": True}) as batch_op:
        batch_op.alter_column("body", existing_type=sa.LargeBinary(), nullable=nullable_body)
    if counter is not None:
        found = connection.execute(sa.text("SELECT seq FROM sqlite_sequence WHERE name = 'queue'")).scalar()
        if found is None:
            connection.execute(
                sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES ('queue', :seq)"), {"seq": counter}
            )
        elif found < counter:
            connection.execute(
                sa.text("UPDATE sqlite_sequence SET seq = :seq WHERE name = 'queue'"), {"seq": counter}
            )


def downgrade() -> None:
    queue = sa.table("queue", sa.column("message_id", sa.Integer), sa.column("body", sa.LargeBinary))
    messages = sa.table("messages", sa.column("id", sa.Integer), sa.column("shared_body", sa.LargeBinary))
    op.execute(
        queue.update()
        .where(queue.c.body.is_(None))
        .values(
            body=sa.select(messages.c.shared_body)
            .where(messages.c.id == queue.c.message_id)
            .scalar_subquery()
        )
    )
    _rebuild_queue(nullable_body=False)
    # Not batch mode: rebuilding `messages` on SQLite would drop a table the queue's foreign key names.
    op.drop_column("messages", "shared_body")

"""metadata_events: accounts named by pseudonym (a keyed HMAC of the account id), not by username

Revision ID: 0018_metadata_pseudonyms
Revises: 0017_appeals
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from vigil.server.db.pseudonyms import pseudonym

revision = "0018_metadata_pseudonyms"
down_revision = "0017_appeals"
branch_labels = None
depends_on = None

_events = sa.table("metadata_events", sa.column("actor", sa.String), sa.column("target", sa.String))
_users = sa.table("users", sa.column("id", sa.Integer), sa.column("username", sa.String))


def upgrade() -> None:
    connection = op.get_bind()
    if connection.execute(sa.select(sa.func.count()).select_from(_events)).scalar_one() == 0:
        return
    key = context.config.attributes.get("pseudonym_key")
    if key is None:
        raise RuntimeError(
            "migration 0018 rewrites the metadata log's account names and needs the server's keys: "
            "run it through `vigil serve` (which migrates with VIGIL_REPORT_KEY)"
        )
    # Every account is renamed, in both columns, with one indexed statement per account and column. (Account
    # deletion removes a deleted account's events before its username goes, so none name a lost account.)
    for user_id, username in connection.execute(sa.select(_users.c.id, _users.c.username)).all():
        alias = pseudonym(key, user_id)
        for column in (_events.c.actor, _events.c.target):
            connection.execute(sa.update(_events).where(column == username).values({column.name: alias}))


def downgrade() -> None:
    connection = op.get_bind()
    key = context.config.attributes.get("pseudonym_key")
    if key is None:
        if connection.execute(sa.select(sa.func.count()).select_from(_events)).scalar_one() == 0:
            return
        raise RuntimeError("downgrading 0018 needs the server's keys to name the accounts again")
    for user_id, username in connection.execute(sa.select(_users.c.id, _users.c.username)).all():
        alias = pseudonym(key, user_id)
        for column in (_events.c.actor, _events.c.target):
            connection.execute(sa.update(_events).where(column == alias).values({column.name: username}))

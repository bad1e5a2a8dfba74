"""users keep the day their age band next changes instead of the day they become adult: an adult's
row keeps no date (it was their 18th birthday, i.e. their birth date); a 16-17's next change is the
same day; a 13-15's is two years earlier (their 16th birthday)

Revision ID: 0007_age_band_change_date
Revises: 0006_group_membership_periods
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0007_age_band_change_date"
down_revision = "0006_group_membership_periods"
branch_labels = None
depends_on = None

_users = sa.table(
    "users",
    sa.column("id", sa.Integer()),
    sa.column("age_band", sa.String()),
    sa.column("adult_on", sa.String()),
    sa.column("band_changes_on", sa.String()),
)


def _years_earlier(day: str, years: int) -> str:
    date = dt.date.fromisoformat(day)
    try:
        return date.replace(year=date.year - years).isoformat()
    except ValueError:  # 29 February
        return dt.date(date.year - years, 3, 1).isoformat()


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("band_changes_on", sa.String(length=10), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(sa.select(_users.c.id, _users.c.age_band, _users.c.adult_on)).all()
    for user_id, band, adult_on in rows:
        changes_on = {"16_17": adult_on, "13_15": _years_earlier(adult_on, 2)}.get(band)
        if changes_on is not None:
            connection.execute(
                sa.update(_users).where(_users.c.id == user_id).values(band_changes_on=changes_on)
            )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("adult_on")
        batch_op.create_index(batch_op.f("ix_users_band_changes_on"), ["band_changes_on"], unique=False)


def downgrade() -> None:
    # The adults' dates are gone for good; they get a date in the past (adult already).
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_band_changes_on"))
        batch_op.add_column(
            sa.Column("adult_on", sa.String(length=10), nullable=False, server_default="1970-01-01")
        )
    op.execute("UPDATE users SET adult_on = band_changes_on WHERE age_band = '16_17'")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("band_changes_on")

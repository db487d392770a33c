"""history days: stored daily figures of past days, and the marks that make them stale

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01

``history_days`` holds each tracked user's local days up to today (in its bot user's zone, at the default
merge gap) as the daily route reports them, stored by the supervisor's housekeeping; ``history_dirty`` marks
a tracked user's stored days stale from a time on when a change touched them (appended, never updated, so
writers take no row lock for it) (triggers in
``db/sql/08_history_days.sql``). Empty at first: the housekeeping fills the days in.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "history_days",
        sa.Column(
            "tracked_user_id",
            sa.BigInteger(),
            sa.ForeignKey("tracked_users.id", ondelete="CASCADE", name=op.f("fk_history_days_tracked_user_id")),
            nullable=False,
        ),
        sa.Column("tz", sa.Text(), nullable=False),
        sa.Column("merge_gap", sa.Interval(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("online", sa.Interval(), nullable=True),
        sa.Column("known", sa.Interval(), nullable=True),
        sa.Column("sessions", sa.Integer(), nullable=False),
        sa.Column("longest", sa.Interval(), nullable=True),
        sa.Column("first_online_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_offline_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tail_state", sa.Text(), nullable=True),
        sa.Column("tail_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tail_observers", sa.Text(), nullable=True),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("segments", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("tracked_user_id", "tz", "merge_gap", "day", name=op.f("pk_history_days")),
    )
    op.create_table(
        "history_dirty",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column(
            "tracked_user_id",
            sa.BigInteger(),
            sa.ForeignKey("tracked_users.id", ondelete="CASCADE", name=op.f("fk_history_dirty_tracked_user_id")),
            nullable=False,
        ),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_history_dirty")),
    )
    op.create_index(op.f("ix_history_dirty_tracked_user_id_since"), "history_dirty", ["tracked_user_id", "since"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("history_dirty")
    op.drop_table("history_days")

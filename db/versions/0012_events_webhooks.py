"""events and webhooks: the commit-ordered event log, webhooks, and notify preferences on tracked users

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01

``events`` is the log SSE streams and webhooks follow: its ids are taken in commit order (by the
commit-time triggers in ``db/sql/07_events.sql``), so a reader following ``id > cursor`` never skips
a row that commits late. ``webhooks`` holds each endpoint with its delivery cursor and retry state.
Tracked users gain ``notify_mode``, ``mute_until`` and ``display_name``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.add_column(
        "tracked_users",
        sa.Column("notify_mode", sa.String(length=16), server_default=sa.text("'online'"), nullable=False),
    )
    op.add_column("tracked_users", sa.Column("mute_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("tracked_users", sa.Column("display_name", sa.String(length=64), nullable=True))
    op.create_check_constraint(
        op.f("ck_tracked_users_notify_mode_known"),
        "tracked_users",
        "notify_mode IN ('online', 'offline', 'both', 'none')",
    )
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("tracked_user_id", sa.BigInteger(), nullable=False),
        sa.Column("status_id", sa.BigInteger(), nullable=True),
        sa.Column("is_online", sa.Boolean(), nullable=True),
        sa.Column("visibility", sa.String(length=32), nullable=True),
        sa.Column("happened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("previous_change_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "recorded_at", sa.DateTime(timezone=True), server_default=sa.text("clock_timestamp()"), nullable=False
        ),
        sa.CheckConstraint("type IN ('status', 'visibility')", name=op.f("ck_events_type_known")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index("ix_events_recorded_at", "events", ["recorded_at"], unique=False)
    op.create_table(
        "webhooks",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False, start=1, increment=1), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("events", postgresql.ARRAY(sa.String(length=16)), nullable=False),
        sa.Column("telegram_user_id", sa.BigInteger(), nullable=True),
        sa.Column("notify_only", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), server_default=sa.text("'active'"), nullable=False),
        sa.Column("cursor", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("state IN ('active', 'disabled')", name=op.f("ck_webhooks_state_known")),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_webhooks_attempts_non_negative")),
        sa.ForeignKeyConstraint(
            ["telegram_user_id"], ["telegram_users.id"], name=op.f("fk_webhooks_telegram_user_id"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
    )
    op.create_index(op.f("ix_webhooks_telegram_user_id"), "webhooks", ["telegram_user_id"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index(op.f("ix_webhooks_telegram_user_id"), table_name="webhooks")
    op.drop_table("webhooks")
    op.drop_index("ix_events_recorded_at", table_name="events")
    op.drop_table("events")
    op.drop_constraint(op.f("ck_tracked_users_notify_mode_known"), "tracked_users", type_="check")
    op.drop_column("tracked_users", "display_name")
    op.drop_column("tracked_users", "mute_until")
    op.drop_column("tracked_users", "notify_mode")

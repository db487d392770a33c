"""history: the facts that tell known time from unknown time

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01

A day's timeline marks time as unknown where nothing could be observed. Three logs record what that
needs, each small next to the status log:

- ``target_watches``: when a tracker began watching a target (its worker had it as a contact,
  ``targets.enrolled_at``) and when that ended (the target moved or lost its tracker). Written by a
  trigger on ``targets`` (``db/sql/06_history.sql``).
- ``tracker_uptimes``: each period a tracker's worker was connected to Telegram, keyed by when it
  connected; the worker's heartbeat moves ``seen_at`` on, and ``ended`` is set once it disconnected.
  A worker that was killed leaves its last ``seen_at``.
- ``target_visibility_changes``: every change of ``targets.visibility`` (trigger), so hidden time can
  be told apart later.

No foreign key to ``tracker_accounts``: what a deleted tracker observed stays known. History written
before this revision is assumed observed: every assigned target gets a watch from its creation, and
every tracker an uptime from the oldest target's creation until now.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

VISIBILITIES = "'unknown', 'visible', 'hidden', 'hidden_by_tracker_privacy', 'not_found'"


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "target_watches",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "target_id",
            sa.BigInteger(),
            sa.ForeignKey("targets.id", ondelete="CASCADE", name=op.f("fk_target_watches_target_id")),
            nullable=False,
        ),
        sa.Column("tracker_account_id", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_target_watches")),
    )
    op.create_index(op.f("ix_target_watches_target_id_started_at"), "target_watches", ["target_id", "started_at"])
    op.create_table(
        "tracker_uptimes",
        sa.Column("tracker_account_id", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.PrimaryKeyConstraint("tracker_account_id", "started_at", name=op.f("pk_tracker_uptimes")),
    )
    op.create_index(
        op.f("ix_tracker_uptimes_tracker_account_id_seen_at"), "tracker_uptimes", ["tracker_account_id", "seen_at"]
    )
    op.create_table(
        "target_visibility_changes",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "target_id",
            sa.BigInteger(),
            sa.ForeignKey("targets.id", ondelete="CASCADE", name=op.f("fk_target_visibility_changes_target_id")),
            nullable=False,
        ),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("visibility", sa.String(length=32), nullable=False),
        sa.CheckConstraint(
            f"visibility IN ({VISIBILITIES})", name=op.f("ck_target_visibility_changes_visibility_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_target_visibility_changes")),
    )
    op.create_index(
        op.f("ix_target_visibility_changes_target_id_changed_at"),
        "target_visibility_changes",
        ["target_id", "changed_at"],
    )
    # What was recorded before counts as observed (nothing said otherwise then).
    op.execute(
        "INSERT INTO target_watches (target_id, tracker_account_id, started_at)"
        " SELECT id, tracker_account_id, created_at FROM targets WHERE tracker_account_id IS NOT NULL"
    )
    op.execute(
        "INSERT INTO tracker_uptimes (tracker_account_id, started_at, seen_at, ended)"
        " SELECT a.id, least(a.created_at, coalesce((SELECT min(created_at) FROM targets), a.created_at)), now(), true"
        " FROM tracker_accounts a"
    )
    op.execute(
        "INSERT INTO target_visibility_changes (target_id, changed_at, visibility)"
        " SELECT id, now(), visibility FROM targets WHERE visibility <> 'unknown'"
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("target_visibility_changes")
    op.drop_table("tracker_uptimes")
    op.drop_table("target_watches")

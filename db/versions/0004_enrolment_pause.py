"""tracker_health: enrolment paused by a flood wait

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

A long flood wait on contacts.resolveUsername no longer retires a tracker: it pauses resolving new
usernames until ``enrolment_paused_until`` while the tracker keeps watching its other targets.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.add_column("tracker_health", sa.Column("enrolment_paused_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    op.drop_column("tracker_health", "enrolment_paused_until")

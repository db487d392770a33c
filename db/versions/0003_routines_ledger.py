"""SQL routines become a repeatable step

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

The functions, views and triggers in db/sql/ are now installed after every upgrade (see
``seeonline.database.routines``) instead of by revision 0001. This revision adds the ledger that
records what was installed, and drops the one routine whose name left SeeOnline's ``so_`` prefix
(the view ``usable_trackers``, now ``so_usable_trackers``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.execute("DROP VIEW IF EXISTS usable_trackers")
    op.create_table(
        "routines_installed",
        sa.Column("script_sha256", sa.String(length=64), nullable=False),
        sa.Column("definitions", postgresql.JSONB(), nullable=False),
        sa.Column("installed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("routines_installed")

"""online_statuses: how each row's time is known

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

``source``: ``push``, ``was_online``, ``expires``, ``resync`` (seen in a snapshot after a gap, so the
change came earlier: inexact) or ``api``. Rows written before this revision keep NULL. Adding a
nullable column without a default rewrites nothing, however big the table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.add_column("online_statuses", sa.Column("source", sa.String(length=16), nullable=True))
    op.execute(
        "ALTER TABLE online_statuses ADD CONSTRAINT ck_online_statuses_source_known"
        " CHECK (source IN ('push', 'was_online', 'expires', 'resync', 'api'))"
    )


def downgrade() -> None:
    """Revert this revision."""
    op.execute("ALTER TABLE online_statuses DROP CONSTRAINT ck_online_statuses_source_known")
    op.drop_column("online_statuses", "source")

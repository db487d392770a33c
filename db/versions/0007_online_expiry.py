"""targets: when the current online status expires

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

Telegram often sends no offline after an online status with ``expires``. The worker closed such an
interval at ``expires`` from memory only, so a worker killed meanwhile left it open for good (when the
target hid its status afterwards). The expiry is now kept with the target.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    # Not indexed: it changes with every online status, and an indexed column would end HOT updates (0002).
    op.add_column("targets", sa.Column("online_expires_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    op.drop_column("targets", "online_expires_at")

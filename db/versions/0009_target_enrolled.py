"""targets: when the assigned tracker's worker began watching the target

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

A target that moves between trackers stays watched by the tracker it leaves until the new one has it
as a contact (``enrolled_at`` set by the new tracker's worker, cleared by every move): no blind gap
while the new tracker resolves and adds a long list of targets.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.add_column("targets", sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    op.drop_column("targets", "enrolled_at")

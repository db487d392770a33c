"""tracker_health: states for a worker that is connecting, cut off from Telegram, or stuck

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

A running worker's health now tells why it is not fully working: ``connecting``,
``telegram_unreachable``, ``writer_failing`` (observed changes buffered but not written) and
``resync_stuck``. They keep the tracker usable.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BEFORE = "'ok', 'flood_wait', 'auth_lost', 'banned', 'privacy_misconfigured', 'stopped', 'fatal'"
AFTER = (
    "'auth_lost', 'banned', 'connecting', 'fatal', 'flood_wait', 'ok', 'privacy_misconfigured', 'resync_stuck',"
    " 'stopped', 'telegram_unreachable', 'writer_failing'"
)


def _states(values: str) -> None:
    op.execute("ALTER TABLE tracker_health DROP CONSTRAINT ck_tracker_health_state_known")
    op.execute(f"ALTER TABLE tracker_health ADD CONSTRAINT ck_tracker_health_state_known CHECK (state IN ({values}))")


def upgrade() -> None:
    """Apply this revision."""
    _states(AFTER)


def downgrade() -> None:
    """Revert this revision."""
    op.execute(
        "UPDATE tracker_health SET state = 'ok'"
        " WHERE state IN ('connecting', 'telegram_unreachable', 'writer_failing', 'resync_stuck')"
    )
    _states(BEFORE)

"""tracker logins: the signed_in state, kept until the tracker is saved

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

A failure after Telegram accepted the sign-in (a unique clash or an outage while saving the tracker)
left the login at code_sent while its stored session was already an authorized key, so a retry got
code_expired. The login now keeps the signed-in result (``signed_in``: the session, the account's
``telegram_id`` and its privacy check) and repeating the step retries the save.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

CONSTRAINT = "ck_tracker_logins_state_known"


def upgrade() -> None:
    """Apply this revision."""
    op.add_column("tracker_logins", sa.Column("telegram_id", sa.BigInteger(), nullable=True))
    op.add_column("tracker_logins", sa.Column("privacy_detail", sa.Text(), nullable=True))
    op.drop_constraint(op.f(CONSTRAINT), "tracker_logins", type_="check")
    op.create_check_constraint(
        op.f(CONSTRAINT), "tracker_logins", "state IN ('code_sent', 'password_needed', 'signed_in', 'done')"
    )


def downgrade() -> None:
    """Revert this revision."""
    op.execute("DELETE FROM tracker_logins WHERE state = 'signed_in'")
    op.drop_constraint(op.f(CONSTRAINT), "tracker_logins", type_="check")
    op.create_check_constraint(op.f(CONSTRAINT), "tracker_logins", "state IN ('code_sent', 'password_needed', 'done')")
    op.drop_column("tracker_logins", "privacy_detail")
    op.drop_column("tracker_logins", "telegram_id")

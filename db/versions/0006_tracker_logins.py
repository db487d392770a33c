"""tracker logins and privacy checks

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29

``tracker_logins`` keeps a phone-code login between HTTP calls (its pre-login session encrypted,
15 minutes at most); ``tracker_privacy_checks`` carries privacy-check requests from the API to a
tracker's worker and the worker's answers.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "tracker_logins",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False, start=1, increment=1), nullable=False),
        sa.Column("phone_number", sa.String(length=32), nullable=False),
        sa.Column("api_id", sa.Integer(), nullable=False),
        sa.Column("api_hash_encrypted", sa.Text(), nullable=False),
        sa.Column("session_encrypted", sa.Text(), nullable=True),
        sa.Column("phone_code_hash", sa.String(length=255), nullable=True),
        sa.Column("max_users", sa.Integer(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=True),
        sa.Column("state", sa.String(length=16), server_default=sa.text("'code_sent'"), nullable=False),
        sa.Column("code_type", sa.String(length=32), nullable=True),
        sa.Column("code_length", sa.Integer(), nullable=True),
        sa.Column("password_hint", sa.Text(), nullable=True),
        sa.Column("tracker_account_id", sa.BigInteger(), nullable=True),
        sa.Column("privacy_ok", sa.Boolean(), nullable=True),
        sa.Column("busy_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "state IN ('code_sent', 'password_needed', 'done')", name=op.f("ck_tracker_logins_state_known")
        ),
        sa.ForeignKeyConstraint(
            ["tracker_account_id"],
            ["tracker_accounts.id"],
            name=op.f("fk_tracker_logins_tracker_account_id"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracker_logins")),
    )
    op.create_index("ix_tracker_logins_expires_at", "tracker_logins", ["expires_at"], unique=False)
    op.create_table(
        "tracker_privacy_checks",
        sa.Column("tracker_account_id", sa.BigInteger(), nullable=False),
        sa.Column("requested_seq", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("done_seq", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("fix_requested", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("privacy_ok", sa.Boolean(), nullable=True),
        sa.Column("fixed", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tracker_account_id"],
            ["tracker_accounts.id"],
            name=op.f("fk_tracker_privacy_checks_tracker_account_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tracker_account_id", name=op.f("pk_tracker_privacy_checks")),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("tracker_privacy_checks")
    op.drop_index("ix_tracker_logins_expires_at", table_name="tracker_logins")
    op.drop_table("tracker_logins")

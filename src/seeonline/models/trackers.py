"""Tracker accounts, their settings (capacity, session), their health and their privacy checks."""

from __future__ import annotations

import datetime

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from seeonline.choices import sql_list
from seeonline.health import HealthState
from seeonline.models.base import AuditedTable, Base, updated_at_column


class TrackerAccount(AuditedTable):
    """A Telegram user account that watches targets; ``api_hash`` is stored encrypted."""

    __tablename__ = "tracker_accounts"

    telegram_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    api_id: Mapped[int] = mapped_column(Integer, unique=True)
    api_hash_encrypted: Mapped[str] = mapped_column(Text)
    # Keyed hash: enforces uniqueness without storing the plaintext.
    api_hash_lookup: Mapped[str] = mapped_column(String(64), unique=True)
    api_hash_masked: Mapped[str] = mapped_column(String(16))
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    is_auth: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))


class TrackerSetting(AuditedTable):
    """A tracker's phone, login session and capacity (``max_users`` targets)."""

    __tablename__ = "tracker_settings"
    __table_args__ = (
        CheckConstraint("max_users >= 0", name="max_users_non_negative"),
        CheckConstraint("current_users >= 0", name="current_users_non_negative"),
    )

    tracker_account_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tracker_accounts.id", ondelete="CASCADE"), unique=True
    )
    phone_number: Mapped[str] = mapped_column(String(32), unique=True)
    session_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    max_users: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    current_users: Mapped[int] = mapped_column(Integer, server_default=text("0"))


class TrackerHealth(Base):
    """What the tracker's worker last reported; ``state`` decides whether the tracker is usable."""

    __tablename__ = "tracker_health"
    __table_args__ = (CheckConstraint(f"state IN ({sql_list(HealthState)})", name="state_known"),)

    tracker_account_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tracker_accounts.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str] = mapped_column(String(32), server_default=text("'stopped'"))
    state_until: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    last_heartbeat_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # A long flood wait on resolving usernames pauses enrolment until then; the tracker keeps watching.
    enrolment_paused_until: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    updated_at: Mapped[datetime.datetime] = updated_at_column()


class TrackerPrivacyCheck(Base):
    """The last-seen privacy check of one tracker: requests from the API, results from its worker (the truth).

    A request bumps ``requested_seq``; the worker answers by writing ``done_seq`` with the result.
    """

    __tablename__ = "tracker_privacy_checks"

    tracker_account_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tracker_accounts.id", ondelete="CASCADE"), primary_key=True
    )
    requested_seq: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    done_seq: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    fix_requested: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    requested_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    checked_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    privacy_ok: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    fixed: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)

"""Tracker logins in progress."""

from __future__ import annotations

import datetime

from advanced_alchemy.mixins import IdentityPrimaryKey
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from seeonline.choices import STORED_LOGIN_STATES, LoginState, sql_list
from seeonline.models.base import Base, created_at_column, updated_at_column


class TrackerLogin(IdentityPrimaryKey, Base):
    """A phone-code login between HTTP calls: its pre-login session (encrypted) and where it stands.

    ``updated_at`` is written by the login service itself (its only writer).
    """

    __tablename__ = "tracker_logins"
    __table_args__ = (
        CheckConstraint(f"state IN ({sql_list(STORED_LOGIN_STATES, sort=False)})", name="state_known"),
        Index("ix_tracker_logins_expires_at", "expires_at"),
    )

    phone_number: Mapped[str] = mapped_column(String(32))
    api_id: Mapped[int] = mapped_column(Integer)
    api_hash_encrypted: Mapped[str] = mapped_column(Text)
    # The auth key send_code ran on: sign_in must use the same one. NULL once done or expired.
    session_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    phone_code_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    max_users: Mapped[int] = mapped_column(Integer)
    is_active: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    state: Mapped[str] = mapped_column(String(16), server_default=text(f"'{LoginState.CODE_SENT}'"))
    code_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    code_length: Mapped[int | None] = mapped_column(Integer, nullable=True)
    password_hint: Mapped[str | None] = mapped_column(Text, nullable=True)
    tracker_account_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("tracker_accounts.id", ondelete="SET NULL"), nullable=True
    )
    # Set once Telegram accepted the sign-in (state signed_in), kept until the tracker is saved.
    telegram_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    privacy_ok: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    privacy_detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    # A lease: one Telegram call per login at a time (two connections of one auth key race each other).
    busy_until: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    expires_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True))
    created_at: Mapped[datetime.datetime] = created_at_column()
    updated_at: Mapped[datetime.datetime] = updated_at_column()

"""The bot's users (TelegramUser) and what each of them follows (TrackedUser)."""

from __future__ import annotations

import datetime

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from seeonline.choices import NotifyMode, Role, Theme, sql_list
from seeonline.models.base import AuditedTable


class TelegramUser(AuditedTable):
    """A bot user: someone using the bot, with a role and a quota of tracked users."""

    __tablename__ = "telegram_users"
    __table_args__ = (
        CheckConstraint(f"role IN ({sql_list(Role, sort=False)})", name="role_known"),
        CheckConstraint(f"theme IN ({sql_list(Theme, sort=False)})", name="theme_known"),
        CheckConstraint("max_users >= 0", name="max_users_non_negative"),
        CheckConstraint("current_users >= 0", name="current_users_non_negative"),
    )

    telegram_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    role: Mapped[str] = mapped_column(String(16), server_default=text("'user'"))
    current_users: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    max_users: Mapped[int] = mapped_column(Integer, server_default=text("5"))
    timezone: Mapped[str] = mapped_column(String(64), server_default=text("'UTC'"))
    theme: Mapped[str] = mapped_column(String(16), server_default=text("'light'"))


class TrackedUser(AuditedTable):
    """One bot user's subscription to a target; its tracker is the target's tracker."""

    __tablename__ = "tracked_users"
    __table_args__ = (
        UniqueConstraint("telegram_user_id", "target_id"),
        CheckConstraint(f"notify_mode IN ({sql_list(NotifyMode, sort=False)})", name="notify_mode_known"),
    )

    telegram_user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("telegram_users.id", ondelete="CASCADE"), index=True
    )
    target_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("targets.id", ondelete="RESTRICT"), index=True)
    username: Mapped[str] = mapped_column(String(32))
    visible_online: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    # What the subscriber wants pushed (events with notify_only, webhooks with notify_only).
    notify_mode: Mapped[str] = mapped_column(String(16), server_default=text("'online'"))
    mute_until: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    display_name: Mapped[str | None] = mapped_column(String(64), nullable=True)

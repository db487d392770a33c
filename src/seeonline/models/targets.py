"""Targets (one per watched Telegram account) and per-tracker resolved peers."""

from __future__ import annotations

import datetime

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from seeonline.choices import Visibility, sql_list
from seeonline.models.base import AuditedTable, Base, created_at_column


class Target(AuditedTable):
    """One watched Telegram account, shared by every tracked user following it and assigned to one tracker."""

    __tablename__ = "targets"
    __table_args__ = (
        CheckConstraint(
            f"visibility IN ({sql_list(Visibility, sort=False)})",
            name="visibility_known",
        ),
        Index("ix_targets_waiting", "id", postgresql_where="tracker_account_id IS NULL"),
    )

    username: Mapped[str] = mapped_column(String(32), unique=True)
    tracker_account_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("tracker_accounts.id", ondelete="SET NULL"), nullable=True, index=True
    )
    telegram_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    visibility: Mapped[str] = mapped_column(String(32), server_default="unknown")
    last_is_online: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    last_status_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    # When the current online status runs out (Telegram's ``expires``): an interval nobody closes ends then.
    online_expires_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    # When its tracker's worker began watching it (cleared by every move): the tracker it left stops then.
    enrolled_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)


class TrackerPeer(Base):
    """A target as one tracker resolved it: ``access_hash`` is valid only for that tracker."""

    __tablename__ = "tracker_peers"

    tracker_account_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tracker_accounts.id", ondelete="CASCADE"), primary_key=True
    )
    target_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("targets.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    access_hash: Mapped[int] = mapped_column(BigInteger)
    resolved_at: Mapped[datetime.datetime] = created_at_column()

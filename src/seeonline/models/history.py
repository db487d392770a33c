"""What history needs to tell known time from unknown time (revision 0012, kept by db/sql/06_history.sql)."""

from __future__ import annotations

import datetime

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Identity, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from seeonline.choices import Visibility, sql_list
from seeonline.models.base import Base


class TargetWatch(Base):
    """A period a tracker watched a target: from its enrolment until the target moved or lost its tracker."""

    __tablename__ = "target_watches"
    __table_args__ = (Index("ix_target_watches_target_id_started_at", "target_id", "started_at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    target_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("targets.id", ondelete="CASCADE"))
    # No foreign key: what a deleted tracker observed stays known.
    tracker_account_id: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True))
    ended_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)


class TrackerUptime(Base):
    """A period a tracker's worker was connected to Telegram (its heartbeats move ``seen_at`` on)."""

    __tablename__ = "tracker_uptimes"
    __table_args__ = (Index("ix_tracker_uptimes_tracker_account_id_seen_at", "tracker_account_id", "seen_at"),)

    tracker_account_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    started_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True), primary_key=True)
    seen_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True))
    ended: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))  # disconnected at seen_at


class TargetVisibilityChange(Base):
    """A change of ``targets.visibility``: hidden time is unknown time."""

    __tablename__ = "target_visibility_changes"
    __table_args__ = (
        CheckConstraint(f"visibility IN ({sql_list(Visibility, sort=False)})", name="visibility_known"),
        Index("ix_target_visibility_changes_target_id_changed_at", "target_id", "changed_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    target_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("targets.id", ondelete="CASCADE"))
    changed_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True))
    visibility: Mapped[str] = mapped_column(String(32))

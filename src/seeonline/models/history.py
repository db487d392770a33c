"""What history needs to tell known time from unknown time (revision 0011, kept by db/sql/06_history.sql), and
the stored past days (revision 0013, db/sql/08_history_days.sql)."""

from __future__ import annotations

import datetime
from typing import Any

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Interval,
    String,
    Text,
    text,
)
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


class HistoryDay(Base):
    """A local day's daily figures (today's so far), stored by the supervisor (db/sql/08_history_days.sql)."""

    __tablename__ = "history_days"

    tracked_user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tracked_users.id", ondelete="CASCADE"), primary_key=True
    )
    tz: Mapped[str] = mapped_column(Text, primary_key=True)
    merge_gap: Mapped[datetime.timedelta] = mapped_column(Interval, primary_key=True)
    day: Mapped[datetime.date] = mapped_column(Date, primary_key=True)
    starts_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True))
    ends_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True))
    online: Mapped[datetime.timedelta | None] = mapped_column(Interval, nullable=True)
    known: Mapped[datetime.timedelta | None] = mapped_column(Interval, nullable=True)
    sessions: Mapped[int] = mapped_column(Integer)
    longest: Mapped[datetime.timedelta | None] = mapped_column(Interval, nullable=True)
    first_online_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    last_offline_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    computed_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True))  # swept up to then
    tail_state: Mapped[str | None] = mapped_column(Text, nullable=True)  # the state then (online/offline/unknown)
    tail_from: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    tail_observers: Mapped[str | None] = mapped_column(Text, nullable=True)  # who watched then (daily.observers)
    body: Mapped[Any] = mapped_column(JSON)  # the day's entry in the daily list, as rendered then
    segments: Mapped[Any] = mapped_column(JSON)  # its timeline's segments, as rendered then


class HistoryDirty(Base):
    """A mark: a tracked user's stored days from ``since`` on are stale (appended by triggers, cleared on storing)."""

    __tablename__ = "history_dirty"
    __table_args__ = (Index("ix_history_dirty_tracked_user_id_since", "tracked_user_id", "since"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tracked_user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("tracked_users.id", ondelete="CASCADE"))
    since: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True))

"""The event log that streams and webhooks follow, and the webhooks with their delivery cursors."""

from __future__ import annotations

import datetime

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Identity, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from seeonline.choices import EventType, WebhookState, sql_list
from seeonline.models.base import AuditedTable, Base


class Event(Base):
    """One entry of the event log; ids are assigned in commit order (see ``db/sql/07_events.sql``)."""

    __tablename__ = "events"
    __table_args__ = (
        CheckConstraint(f"type IN ({sql_list(EventType, sort=False)})", name="type_known"),
        Index("ix_events_recorded_at", "recorded_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    # No foreign key: an event outlives nothing it names, readers join and skip what is gone.
    tracked_user_id: Mapped[int] = mapped_column(BigInteger)
    status_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    is_online: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    visibility: Mapped[str | None] = mapped_column(String(32), nullable=True)
    happened_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True))
    previous_change_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    recorded_at: Mapped[datetime.datetime] = mapped_column(
        DateTimeUTC(timezone=True), server_default=text("clock_timestamp()")
    )


class Webhook(AuditedTable):
    """An endpoint events are POSTed to, in order, from ``cursor`` on."""

    __tablename__ = "webhooks"
    __table_args__ = (
        CheckConstraint(f"state IN ({sql_list(WebhookState, sort=False)})", name="state_known"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
    )

    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(ARRAY(String(16)))
    telegram_user_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("telegram_users.id", ondelete="CASCADE"), nullable=True, index=True
    )
    notify_only: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    secret_encrypted: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), server_default=text("'active'"))
    # The last event id the endpoint acknowledged (2xx); delivery resumes after it.
    cursor: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))  # failures in a row
    failing_since: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    next_attempt_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_delivered_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)

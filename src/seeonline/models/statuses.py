"""The append-only log of online/offline transitions: the big, monthly-partitioned table."""

from __future__ import annotations

import datetime

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Identity, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from seeonline.choices import StatusSource, sql_list
from seeonline.models.base import Base


class OnlineStatus(Base):
    """One transition of a tracked user; ``created_at`` is when it happened."""

    __tablename__ = "online_statuses"
    __table_args__ = (
        Index("ix_online_statuses_tracked_user_id_created_at", "tracked_user_id", "created_at"),
        CheckConstraint(f"source IN ({sql_list(StatusSource, sort=False)})", name="source_known"),
        {"postgresql_partition_by": "RANGE (created_at)"},
    )

    # Partitioned tables need the partition key in the primary key.
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    created_at: Mapped[datetime.datetime] = mapped_column(
        DateTimeUTC(timezone=True), server_default=func.now(), primary_key=True
    )
    tracked_user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("tracked_users.id", ondelete="CASCADE"))
    is_online: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str | None] = mapped_column(String(16), nullable=True)  # a StatusSource

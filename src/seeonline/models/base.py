"""Declarative base with a naming convention, so error handling can map constraints to fields."""

from __future__ import annotations

import datetime

from advanced_alchemy.mixins import IdentityPrimaryKey
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import MetaData, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every SeeOnline table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def created_at_column() -> Mapped[datetime.datetime]:
    """``created_at`` filled by the database, so raw-SQL writers get it too."""
    return mapped_column(DateTimeUTC(timezone=True), server_default=func.now(), nullable=False)


def updated_at_column() -> Mapped[datetime.datetime]:
    """``updated_at``: a trigger installed by the migrations keeps it current."""
    return mapped_column(DateTimeUTC(timezone=True), server_default=func.now(), nullable=False)


class AuditedTable(IdentityPrimaryKey, Base):
    """A contract resource: integer identity ``id`` plus ``created_at``/``updated_at``."""

    __abstract__ = True

    created_at: Mapped[datetime.datetime] = created_at_column()
    updated_at: Mapped[datetime.datetime] = updated_at_column()

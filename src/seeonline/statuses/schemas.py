"""Request bodies for online statuses."""

from __future__ import annotations

import datetime

import msgspec

from seeonline.api.bodies import Id, Instant
from seeonline.api.params import to_utc


class OnlineStatusCreate(msgspec.Struct):
    """POST /online-statuses/: ``created_at`` is when the change happened (server time if omitted)."""

    tracked_user_id: Id
    is_online: bool
    created_at: Instant | None = None


class OnlineStatusUpdate(msgspec.Struct):
    """PATCH /online-statuses/{id}/: every field optional."""

    tracked_user_id: Id | msgspec.UnsetType = msgspec.UNSET
    is_online: bool | msgspec.UnsetType = msgspec.UNSET
    created_at: Instant | msgspec.UnsetType = msgspec.UNSET


def as_utc(moment: datetime.datetime) -> datetime.datetime:
    """A timestamp without an offset is UTC; one that cannot be expressed in UTC is a 400."""
    return to_utc("created_at", moment)


class OnlineStatusOut(msgspec.Struct):
    """A status transition as responses show it."""

    id: int
    tracked_user_id: int
    is_online: bool
    created_at: Instant

"""The closed sets of values the API and the database share (health states live in ``seeonline.health``)."""

from __future__ import annotations

import enum
from collections.abc import Iterable


class Role(enum.StrEnum):
    """A bot user's role."""

    BANNED = "banned"
    USER = "user"
    VIP = "vip"
    ADMIN = "admin"


class Theme(enum.StrEnum):
    """A bot user's chart theme."""

    LIGHT = "light"
    DARK = "dark"


class Visibility(enum.StrEnum):
    """Whether a tracker sees a target's exact status (``targets.visibility``)."""

    UNKNOWN = "unknown"  # not checked yet (also after the target moved to another tracker)
    VISIBLE = "visible"
    HIDDEN = "hidden"  # the target hides its last seen
    HIDDEN_BY_TRACKER_PRIVACY = "hidden_by_tracker_privacy"  # the tracker hides its own (by_me)
    NOT_FOUND = "not_found"  # no such username


class StatusSource(enum.StrEnum):
    """How a status row's time is known (``online_statuses.source``; NULL on rows older than the column)."""

    PUSH = "push"  # when the worker received Telegram's update (online: it just happened)
    WAS_ONLINE = "was_online"  # Telegram's exact last-seen time (offline)
    EXPIRES = "expires"  # an online status ran out with no offline after it
    RESYNC = "resync"  # seen in a contacts.getStatuses snapshot after a gap: the change came earlier (inexact)
    API = "api"  # written through POST /online-statuses/


def sql_list(values: Iterable[str], *, sort: bool = True) -> str:
    """``'a', 'b'``: values for an SQL ``IN (...)`` (sorted, or in their own order)."""
    return ", ".join(f"'{value}'" for value in (sorted(values) if sort else values))

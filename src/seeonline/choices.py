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


class UnknownReason(enum.StrEnum):
    """Why a stretch of a tracked user's history is unknown (timelines, ``db/sql/06_history.sql``)."""

    BEFORE_TRACKING = "before_tracking"  # before the subscription, the first watch, or the first status
    UNASSIGNED = "unassigned"  # no tracker watched the target
    TRACKER_DOWN = "tracker_down"  # its tracker's worker was not running or not connected to Telegram
    HIDDEN = "hidden"  # the target hid its status (or the tracker could not see it)


class NotifyMode(enum.StrEnum):
    """Which transitions of a tracked user its subscriber wants to hear about (``tracked_users.notify_mode``)."""

    ONLINE = "online"
    OFFLINE = "offline"
    BOTH = "both"
    NONE = "none"


class EventType(enum.StrEnum):
    """What an entry of the event log says (``events.type``); also the SSE ``event:`` name."""

    STATUS = "status"  # a recorded online/offline transition
    VISIBILITY = "visibility"  # the target started or stopped hiding its status


class WebhookState(enum.StrEnum):
    """Whether a webhook is being delivered to (``webhooks.state``)."""

    ACTIVE = "active"
    DISABLED = "disabled"  # retries ran out; ``last_error`` says why


class LoginState(enum.StrEnum):
    """Where a tracker login stands (``tracker_logins.state``; ``expired`` is only ever rendered)."""

    CODE_SENT = "code_sent"
    PASSWORD_NEEDED = "password_needed"  # noqa: S105 - a state name, not a password
    # Telegram accepted the sign-in; the tracker is not saved yet (repeating the step retries the save).
    SIGNED_IN = "signed_in"
    DONE = "done"
    EXPIRED = "expired"  # not stored: a login past its expires_at that is not done


# The states a login row can hold.
STORED_LOGIN_STATES = tuple(state for state in LoginState if state is not LoginState.EXPIRED)


def sql_list(values: Iterable[str], *, sort: bool = True) -> str:
    """``'a', 'b'``: values for an SQL ``IN (...)`` (sorted, or in their own order)."""
    return ", ".join(f"'{value}'" for value in (sorted(values) if sort else values))

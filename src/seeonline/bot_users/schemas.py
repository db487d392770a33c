"""Request bodies for bot users and tracked users, with their value rules."""

from __future__ import annotations

import zoneinfo
from typing import Annotated

import msgspec

from seeonline import usernames
from seeonline.api.bodies import BigInt, Count, Id, Instant, documented
from seeonline.api.errors import invalid
from seeonline.api.params import NO_NUL, in_path, shown, text_matching
from seeonline.choices import NotifyMode, Role, Theme, Visibility

ROLES: tuple[str, ...] = tuple(Role)
THEMES: tuple[str, ...] = tuple(Theme)
NOTIFY_MODES: tuple[str, ...] = tuple(NotifyMode)
# The IANA zones this server knows: what ``check_timezone`` accepts, and the document's enum.
TIME_ZONES: tuple[str, ...] = tuple(sorted(zoneinfo.available_timezones()))
_KNOWN_ZONES = frozenset(TIME_ZONES)
DisplayName = Annotated[str, msgspec.Meta(max_length=64, pattern=NO_NUL)]
TimezoneName = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=64,
        pattern="^[A-Za-z0-9_+\\-/]+$",
        extra_json_schema=documented(enum=list(TIME_ZONES)),
    ),
]
# msgspec only bounds the text; ``clean_username`` applies Telegram's rule (after stripping spaces and one
# "@"), and the document shows that rule as a pattern.
Username = Annotated[
    str,
    msgspec.Meta(min_length=1, max_length=40, pattern=NO_NUL, extra_json_schema=documented(pattern=usernames.PATTERN)),
]


# A username as the by-username routes and the filters take it: any text is looked up, and only a username
# can match (the document shows the username rule).
USERNAME = text_matching(usernames.PATTERN)
PathUsername = Annotated[str, in_path(USERNAME)]


class TelegramUserCreate(msgspec.Struct):
    """POST /telegram-users/."""

    telegram_id: BigInt
    role: Role = Role.USER
    max_users: Count = 5
    timezone: TimezoneName = "UTC"
    theme: Theme = Theme.LIGHT


class TelegramUserUpdate(msgspec.Struct):
    """PATCH /telegram-users/…: every field optional."""

    telegram_id: BigInt | msgspec.UnsetType = msgspec.UNSET
    role: Role | msgspec.UnsetType = msgspec.UNSET
    max_users: Count | msgspec.UnsetType = msgspec.UNSET
    timezone: TimezoneName | msgspec.UnsetType = msgspec.UNSET
    theme: Theme | msgspec.UnsetType = msgspec.UNSET


class TrackedUserCreate(msgspec.Struct):
    """POST /tracked-users/: without ``tracker_account_id`` the service picks the tracker."""

    telegram_user_id: Id
    username: Username
    tracker_account_id: Id | None = None
    visible_online: bool = True
    notify_mode: NotifyMode = NotifyMode.ONLINE
    mute_until: Instant | None = None
    display_name: DisplayName | None = None


class TrackedUserUpdate(msgspec.Struct):
    """PATCH /tracked-users/…: every field optional."""

    telegram_user_id: Id | msgspec.UnsetType = msgspec.UNSET
    username: Username | msgspec.UnsetType = msgspec.UNSET
    tracker_account_id: Id | msgspec.UnsetType | None = msgspec.UNSET
    visible_online: bool | msgspec.UnsetType = msgspec.UNSET
    notify_mode: NotifyMode | msgspec.UnsetType = msgspec.UNSET
    mute_until: Instant | msgspec.UnsetType | None = msgspec.UNSET
    display_name: DisplayName | msgspec.UnsetType | None = msgspec.UNSET


# The notify preferences a create or PATCH may carry; stored on the row after the slot engine's call.
NOTIFY_FIELDS = ("notify_mode", "mute_until", "display_name")


def check_timezone(name: str) -> str:
    """An IANA zone name, or a 400."""
    if name not in _KNOWN_ZONES:
        raise invalid("timezone", f"{shown(name)} is not a known IANA time zone")
    return name


def clean_username(raw: str, field: str = "username") -> tuple[str, str]:
    """``(normalized, display)``: strip one leading ``@``; check Telegram's rule; lower-case the key."""
    display = usernames.display_form(raw)
    if not usernames.RULE.match(display):
        raise invalid(
            field, "5-32 characters of letters, digits and underscores, starting with a letter (a leading @ is allowed)"
        )
    return display.lower(), display


class TelegramUserOut(msgspec.Struct):
    """A bot user as responses show it."""

    id: int
    telegram_id: int
    role: Role
    current_users: int
    max_users: int
    timezone: str
    theme: Theme
    created_at: Instant
    updated_at: Instant


class TrackedUserOut(msgspec.Struct):
    """A tracked user as responses show it (``tracker_account_id`` null while waiting for a slot)."""

    id: int
    tracker_account_id: int | None
    telegram_user_id: int
    username: str
    visible_online: bool
    created_at: Instant
    updated_at: Instant
    notify_mode: NotifyMode
    mute_until: Instant | None
    display_name: str | None
    is_online: bool | None  # the target's current state; null while unknown or hidden
    status_since: Instant | None  # when the current state began
    visibility: Visibility

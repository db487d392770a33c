"""Request bodies for bot users and tracked users, with their value rules."""

from __future__ import annotations

import datetime
import re
import zoneinfo
from functools import lru_cache
from typing import Annotated

import msgspec

from seeonline import usernames
from seeonline.api.bodies import BigInt, Count, Id
from seeonline.api.errors import invalid
from seeonline.api.params import shown
from seeonline.choices import NotifyMode, Role, Theme, Visibility

ROLES: tuple[str, ...] = tuple(Role)
THEMES: tuple[str, ...] = tuple(Theme)
NOTIFY_MODES: tuple[str, ...] = tuple(NotifyMode)
DisplayName = Annotated[str, msgspec.Meta(max_length=64, pattern="^[^\\x00]*$")]
TimezoneName = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern="^[A-Za-z0-9_+\\-/]+$")]
# Leading "@" allowed and stripped; the rest is Telegram's username rule.
Username = Annotated[str, msgspec.Meta(min_length=1, max_length=40, pattern="^[^\\x00]*$")]

USERNAME_RULE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{4,31}$")


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
    mute_until: datetime.datetime | None = None
    display_name: DisplayName | None = None


class TrackedUserUpdate(msgspec.Struct):
    """PATCH /tracked-users/…: every field optional."""

    telegram_user_id: Id | msgspec.UnsetType = msgspec.UNSET
    username: Username | msgspec.UnsetType = msgspec.UNSET
    tracker_account_id: Id | msgspec.UnsetType | None = msgspec.UNSET
    visible_online: bool | msgspec.UnsetType = msgspec.UNSET
    notify_mode: NotifyMode | msgspec.UnsetType = msgspec.UNSET
    mute_until: datetime.datetime | msgspec.UnsetType | None = msgspec.UNSET
    display_name: DisplayName | msgspec.UnsetType | None = msgspec.UNSET


# The notify preferences a create or PATCH may carry; stored on the row after the slot engine's call.
NOTIFY_FIELDS = ("notify_mode", "mute_until", "display_name")


@lru_cache(maxsize=1024)
def _known_zone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def check_timezone(name: str) -> str:
    """An IANA zone name, or a 400."""
    if not _known_zone(name):
        raise invalid("timezone", f"{shown(name)} is not a known IANA time zone")
    return name


def clean_username(raw: str, field: str = "username") -> tuple[str, str]:
    """``(normalized, display)``: strip one leading ``@``; check Telegram's rule; lower-case the key."""
    display = usernames.display_form(raw)
    if not USERNAME_RULE.match(display):
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
    created_at: datetime.datetime
    updated_at: datetime.datetime


class TrackedUserOut(msgspec.Struct):
    """A tracked user as responses show it (``tracker_account_id`` null while waiting for a slot)."""

    id: int
    tracker_account_id: int | None
    telegram_user_id: int
    username: str
    visible_online: bool
    created_at: datetime.datetime
    updated_at: datetime.datetime
    notify_mode: NotifyMode
    mute_until: datetime.datetime | None
    display_name: str | None
    is_online: bool | None  # the target's current state; null while unknown or hidden
    status_since: datetime.datetime | None  # when the current state began
    visibility: Visibility

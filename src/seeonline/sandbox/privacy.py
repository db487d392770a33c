"""What one sandbox user sees of another's last-seen status, following Telegram's privacy rules."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from telethon.tl import types

if TYPE_CHECKING:
    from seeonline.sandbox.world import SandboxUser

# Telegram buckets a hidden last-seen into these windows (seconds since the user was last online).
_RECENTLY = 3 * 86400
_LAST_WEEK = 7 * 86400


class Privacy(enum.StrEnum):
    """Who may see a user's exact last-seen time ("Last seen & online" privacy setting)."""

    EVERYBODY = "everybody"
    CONTACTS = "contacts"
    NOBODY = "nobody"


def shares_last_seen_with(owner: SandboxUser, viewer_id: int) -> bool:
    """Whether ``owner``'s privacy setting lets ``viewer_id`` see the exact status."""
    if owner.id == viewer_id or owner.privacy is Privacy.EVERYBODY:
        return True
    # "My contacts" means people in the owner's own contact list, not people who added the owner.
    return owner.privacy is Privacy.CONTACTS and viewer_id in owner.contacts


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(int(timestamp), tz=UTC)


def exact_status(target: SandboxUser, now: float) -> Any:
    """The unhidden status: online until ``expires``, else offline since ``was_online``."""
    if target.online_until is not None and target.online_until > now:
        return types.UserStatusOnline(expires=_utc(target.online_until))
    return types.UserStatusOffline(was_online=_utc(target.last_seen(now)))


def status_seen_by(viewer: SandboxUser, target: SandboxUser, now: float) -> Any:
    """The ``UserStatus`` Telegram would show ``viewer`` for ``target`` at ``now``."""
    if viewer.id == target.id:
        return exact_status(target, now)
    # Reciprocity: a user who hides their own last-seen from someone cannot see that person's (Premium can).
    by_me = not viewer.premium and not shares_last_seen_with(viewer, target.id)
    if shares_last_seen_with(target, viewer.id) and not by_me:
        return exact_status(target, now)
    ago = now - target.last_seen(now)
    flag = True if by_me else None
    if ago <= _RECENTLY:
        return types.UserStatusRecently(by_me=flag)
    if ago <= _LAST_WEEK:
        return types.UserStatusLastWeek(by_me=flag)
    return types.UserStatusLastMonth(by_me=flag)

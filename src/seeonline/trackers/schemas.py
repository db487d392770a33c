"""Request bodies for tracker accounts and tracker settings."""

from __future__ import annotations

from typing import Annotated

import msgspec

from seeonline.api.bodies import BigInt, Count, Id, Instant, PositiveInt32, documented
from seeonline.api.params import NO_NUL, in_path, text_matching
from seeonline.trackers.sessions import SESSION_PATTERN

# Digits, spaces, parentheses and dashes, at least one digit, an optional leading "+".
PHONE_PATTERN = "^\\+?(?=[^0-9]*[0-9])[0-9 ()-]{1,31}$"
ApiHash = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=NO_NUL)]
Phone = Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=PHONE_PATTERN)]
# msgspec bounds the text; ``require_session_string`` loads it with Telethon, whose layout the document shows.
SessionString = Annotated[
    str,
    msgspec.Meta(min_length=1, max_length=8192, pattern=NO_NUL, extra_json_schema=documented(pattern=SESSION_PATTERN)),
]
# A phone number as the by-phone-number routes and the filter take it (any text matches only a stored one).
PHONE = text_matching(PHONE_PATTERN)
PathPhone = Annotated[str, in_path(PHONE)]
# A setting cannot move to another tracker account: PATCH accepts only the value it already has.
FixedTrackerAccountId = Annotated[Id, msgspec.Meta(extra_json_schema=documented(read_only=True))]


class TrackerAccountCreate(msgspec.Struct):
    """POST /tracker-accounts/."""

    telegram_id: BigInt
    api_id: PositiveInt32
    api_hash: ApiHash
    is_active: bool = False
    is_auth: bool = False


class TrackerAccountUpdate(msgspec.Struct):
    """PATCH /tracker-accounts/{id}/: every field optional."""

    telegram_id: BigInt | msgspec.UnsetType = msgspec.UNSET
    api_id: PositiveInt32 | msgspec.UnsetType = msgspec.UNSET
    api_hash: ApiHash | msgspec.UnsetType = msgspec.UNSET
    is_active: bool | msgspec.UnsetType = msgspec.UNSET
    is_auth: bool | msgspec.UnsetType = msgspec.UNSET


class TrackerSettingCreate(msgspec.Struct):
    """POST /tracker-settings/."""

    tracker_account_id: Id
    phone_number: Phone
    session_string: SessionString | None = None
    max_users: Count = 0


class TrackerSettingUpdate(msgspec.Struct):
    """PATCH /tracker-settings/{id}/: every field optional; ``session_string: null`` logs out."""

    tracker_account_id: FixedTrackerAccountId | msgspec.UnsetType = msgspec.UNSET
    phone_number: Phone | msgspec.UnsetType = msgspec.UNSET
    session_string: SessionString | msgspec.UnsetType | None = msgspec.UNSET
    max_users: Count | msgspec.UnsetType = msgspec.UNSET


class TrackerHealthOut(msgspec.Struct):
    """A tracker's health as its worker last reported it (read-only)."""

    state: str
    state_until: Instant | None
    last_heartbeat_at: Instant | None
    last_error: str | None
    enrolment_paused_until: Instant | None  # new usernames wait for a flood wait to end


class TrackerAccountOut(msgspec.Struct):
    """A tracker account as responses show it (``api_hash`` masked)."""

    id: int
    telegram_id: int
    api_id: int
    api_hash: str
    is_active: bool
    is_auth: bool
    health: TrackerHealthOut
    created_at: Instant
    updated_at: Instant


class TrackerSettingOut(msgspec.Struct):
    """A tracker setting as responses show it (``session_string`` always null)."""

    id: int
    tracker_account_id: int
    phone_number: str
    session_string: None
    has_session: bool
    max_users: int
    current_users: int
    created_at: Instant
    updated_at: Instant


class TrackerPrivacyCheckOut(msgspec.Struct):
    """A tracker's last-seen privacy check, as its worker last answered it (``pending`` until it does)."""

    tracker_account_id: int
    state: str  # pending | done
    fix_requested: bool
    privacy_ok: bool | None
    fixed: bool
    detail: str | None
    requested_at: Instant | None
    checked_at: Instant | None

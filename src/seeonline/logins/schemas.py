"""Request and response bodies of /tracker-logins/."""

from __future__ import annotations

from typing import Annotated

import msgspec

from seeonline.api.bodies import Count, Instant, PositiveInt32
from seeonline.choices import LoginState
from seeonline.trackers.schemas import ApiHash, Phone

# Codes arrive with separators ("1-2-3-4-5"): a code sent through a Telegram chat unaltered is invalidated.
LoginCodeText = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern="^[^\\x00]*$")]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=256, pattern="^[^\\x00]*$")]


class TrackerLoginCreate(msgspec.Struct):
    """POST /tracker-logins/: start a login; Telegram sends the account a code."""

    api_id: PositiveInt32
    api_hash: ApiHash
    phone_number: Phone
    max_users: Count
    is_active: bool | None = None  # None: true for a new tracker, unchanged on a re-login


class LoginCode(msgspec.Struct):
    """POST /tracker-logins/{id}/code."""

    code: LoginCodeText


class LoginPassword(msgspec.Struct):
    """POST /tracker-logins/{id}/password: the account's 2FA password (never stored or logged)."""

    password: Password


class TrackerLoginOut(msgspec.Struct):
    """A login as responses show it (no session, no code hash, no api_hash)."""

    id: int
    state: LoginState
    phone_number: str
    api_id: int
    max_users: int
    code_type: str | None
    code_length: int | None
    password_hint: str | None
    tracker_account_id: int | None
    privacy_ok: bool | None
    expires_at: Instant
    created_at: Instant
    updated_at: Instant

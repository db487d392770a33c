"""Request and response bodies of /tracker-logins/."""

from __future__ import annotations

from typing import Annotated

import msgspec

from seeonline.api.bodies import Count, Instant, PositiveInt32, documented
from seeonline.api.params import NO_NUL
from seeonline.choices import LoginState
from seeonline.trackers.schemas import ApiHash, Phone

MAX_CODE_DIGITS = 16
# Codes arrive with separators ("1-2-3-4-5"): a code sent through a Telegram chat unaltered is invalidated.
# ``clean_code`` drops whatever is neither letter nor digit and wants ASCII digits left; the document shows
# the plainest form of that: digits with spaces or dashes between.
LoginCodeText = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=64,
        pattern=NO_NUL,
        extra_json_schema=documented(pattern=f"^[ -]*(?:[0-9][ -]*){{1,{MAX_CODE_DIGITS}}}$"),
    ),
]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=256, pattern=NO_NUL)]


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

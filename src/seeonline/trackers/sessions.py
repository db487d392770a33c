"""The door check for a tracker's ``session_string``: it must be a Telethon ``StringSession``.

A string Telethon cannot load used to be stored as it came; the worker then crashed on every start
until the tracker went ``fatal``. Telethon's own loader is the definition of the format.
"""

from __future__ import annotations

import struct

from telethon.sessions import StringSession

from seeonline.api.errors import ApiError, invalid

FIELD = "session_string"


def require_session_string(value: str) -> None:
    """Raise a 400 naming the field unless ``value`` loads as a logged-in Telethon StringSession."""
    try:
        session = StringSession(value)
    except (ValueError, struct.error):
        raise _not_a_session() from None
    if session.auth_key is None:
        raise invalid(FIELD, "the session holds no authorization key (it was never logged in)")


def _not_a_session() -> ApiError:
    # Never echo the value: it is a credential.
    return invalid(FIELD, "not a Telethon StringSession (the string StringSession.save() returns, starting with 1)")

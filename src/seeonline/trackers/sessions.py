"""The door check for a tracker's ``session_string``: it must be a Telethon ``StringSession`` Telegram can use.

A string Telethon cannot load used to be stored as it came; the worker then crashed on every start
until the tracker went ``fatal``. Telethon's own loader is the definition of the format, and the OpenAPI
pattern is derived from the same layout. What no pattern can state (a key that was logged in, an address
in Telegram's networks or a trusted sandbox) is refused with its own code, ``session_refused``.
"""

from __future__ import annotations

import struct

from telethon.sessions import StringSession
from telethon.sessions.string import _STRUCT_PREFORMAT, CURRENT_VERSION

from seeonline.api.errors import ApiError, invalid
from seeonline.telegram.addresses import refused_address

FIELD = "session_string"


def _base64url(payload_bytes: int) -> str:
    """A regex for ``payload_bytes`` bytes in URL-safe base64, padded as ``StringSession.save()`` writes it."""
    padding = -payload_bytes % 3
    return f"[A-Za-z0-9_-]{{{(payload_bytes + padding) // 3 * 4 - padding}}}{'=' * padding}"


# The version, then data centre id, IPv4 or IPv6 address, port and authorization key, base64-encoded.
SESSION_PATTERN = (
    f"^{CURRENT_VERSION}(?:"
    + "|".join(_base64url(struct.calcsize(_STRUCT_PREFORMAT.format(ip_bytes))) for ip_bytes in (4, 16))
    + ")$"
)


def require_session_string(value: str) -> None:
    """Raise a 400 naming the field unless ``value`` is a logged-in StringSession for one of Telegram's DCs."""
    try:
        session = StringSession(value)
    except (ValueError, struct.error):
        # Never echo the value: it is a credential.
        raise invalid(
            FIELD, "not a Telethon StringSession (the string StringSession.save() returns, starting with 1)"
        ) from None
    if session.auth_key is None:
        raise refused("the session holds no authorization key (it was never logged in)")
    reason = refused_address(value)
    if reason is not None:  # it would make a worker connect somewhere that is not Telegram
        raise refused(reason)


def refused(detail: str) -> ApiError:
    """400 ``session_refused``: a well-formed session string this server will not use."""
    return ApiError(400, f"{FIELD}: {detail}", code="session_refused", field=FIELD)

"""Session strings Telethon loads, for tests that store a tracker session but never connect with it."""

from __future__ import annotations

import secrets

from telethon.crypto import AuthKey
from telethon.sessions import StringSession


def session_string() -> str:
    """A logged-in-looking StringSession for Telegram's DC 2 with a random key (the API accepts only Telegram's
    addresses outside sandbox mode; the API tests that store it never run a worker, so nothing dials it)."""
    session = StringSession()
    session.set_dc(2, "149.154.167.51", 443)
    session.auth_key = AuthKey(secrets.token_bytes(256))
    saved: str = session.save()
    return saved

"""Session strings Telethon loads, for tests that store a tracker session but never connect with it."""

from __future__ import annotations

import secrets

from telethon.crypto import AuthKey
from telethon.sessions import StringSession


def session_string(port: int = 1) -> str:
    """A logged-in-looking StringSession for 127.0.0.1:``port`` with a random key (nothing listens on 1)."""
    session = StringSession()
    session.set_dc(2, "127.0.0.1", port)
    session.auth_key = AuthKey(secrets.token_bytes(256))
    saved: str = session.save()
    return saved

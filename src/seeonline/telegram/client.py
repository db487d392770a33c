"""The one place a Telethon client is built, so every caller gets the same safe settings."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from telethon import TelegramClient
from telethon.crypto import rsa
from telethon.sessions import StringSession

from seeonline.logging import get_logger
from seeonline.telegram.addresses import DC_ENV, refused_address

__all__ = ["DC_ENV", "RSA_KEY_ENV", "UntrustedSessionError", "build_client", "parse_dc"]

log = get_logger("seeonline.telegram")

# Test-only overrides, unset in production: point logins at the sandbox (DC_ENV, see telegram.addresses) and
# trust its RSA key.
RSA_KEY_ENV = "SEEONLINE_TELEGRAM_RSA_KEY"
DEFAULT_DC_ID = 2
_added_keys: set[str] = set()


def parse_dc(value: str) -> tuple[str, int]:
    """Split ``host:port`` (the port is required)."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"{DC_ENV} must be host:port, got {value!r}")
    return host, int(port)


def _trust_extra_rsa_key(path: str) -> None:
    """Add a PEM public key to Telethon's trusted server keys, once per process."""
    if path in _added_keys:
        return
    rsa.add_key(Path(path).read_text(), old=False)
    _added_keys.add(path)
    log.warning("telegram_extra_rsa_key_trusted", env=RSA_KEY_ENV)


class UntrustedSessionError(ValueError):
    """A session string names a data centre address that is not Telegram's (see telegram.addresses)."""


def build_client(session: str | None, api_id: int, api_hash: str, **kwargs: Any) -> TelegramClient:
    """A ``TelegramClient`` on a ``StringSession`` that never sleeps through a flood wait itself.

    ``flood_sleep_threshold=0`` turns every FLOOD_WAIT into a ``FloodWaitError`` the caller records.
    ``raise_last_call_error=True``: after its retries of a Telegram 5xx (INTERNAL, RPC_CALL_FAIL, …) Telethon
    raises that ``ServerError`` (an ``RPCError`` callers handle) instead of a bare ``ValueError``.
    When ``SEEONLINE_TELEGRAM_DC`` is set, a session without an auth key (a fresh login) is pointed at
    that address; ``SEEONLINE_TELEGRAM_RSA_KEY`` names a PEM public key to trust for its handshake.
    A session whose address is not Telegram's (nor the sandbox's) raises ``UntrustedSessionError``.
    """
    if session and (reason := refused_address(session)) is not None:
        raise UntrustedSessionError(reason)
    kwargs["flood_sleep_threshold"] = 0
    kwargs["raise_last_call_error"] = True
    string_session = StringSession(session or None)
    dc_override = os.environ.get(DC_ENV)
    if dc_override:
        host, port = parse_dc(dc_override)
        if string_session.auth_key is None:
            string_session.set_dc(DEFAULT_DC_ID, host, port)
            log.warning("telegram_dc_overridden", env=DC_ENV, host=host, port=port)
    rsa_key = os.environ.get(RSA_KEY_ENV)
    if rsa_key:
        _trust_extra_rsa_key(rsa_key)
    return TelegramClient(string_session, api_id, api_hash, **kwargs)

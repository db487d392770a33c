"""Unexpected Telegram errors a worker carries on through, per target or kind of call, with backoff.

One target's odd error (``FROZEN_METHOD_INVALID`` on its ``contacts.addContact``, say) must cost that
target a retry, not the worker: the error is remembered, shown in the tracker's ``last_error`` (the
newest one), and retried after a doubling delay; a success clears it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from telethon import errors
from telethon.errors.rpcerrorlist import rpc_errors_dict

# Telethon's classes for known errors keep no error name (their ``message`` is the base class's).
_ERROR_NAMES: dict[type, str] = {cls: name for name, cls in rpc_errors_dict.items()}


def describe(exc: errors.RPCError) -> str:
    """E.g. ``AddContactRequest: 420 FROZEN_METHOD_INVALID``."""
    request = type(exc.request).__name__ if exc.request is not None else "request"
    return f"{request}: {exc.code} {_ERROR_NAMES.get(type(exc), exc.message)}"


class CallErrors:
    """Errors by key: a target id, or a kind of call such as ``"resync"``.

    ``on_change`` is called whenever the message shown may have changed.
    """

    def __init__(self, *, retry_base: float, retry_max: float, on_change: Callable[[], None]) -> None:
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.on_change = on_change
        self._messages: dict[int | str, str] = {}
        self._failures: dict[int | str, int] = {}
        self._retry_at: dict[int | str, float] = {}

    def failed(self, key: int | str, exc: errors.RPCError) -> float:
        """Remember an unexpected error; returns the delay before its retry."""
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        delay = min(self.retry_base * 2.0 ** (failures - 1), self.retry_max)
        self._retry_at[key] = time.monotonic() + delay
        self.note(key, f"target {key}: {describe(exc)}" if isinstance(key, int) else describe(exc))
        return delay

    def note(self, key: int | str, message: str) -> None:
        """Show ``message`` for ``key`` (the newest message is the one shown)."""
        self._messages.pop(key, None)  # re-inserted: the newest is last
        self._messages[key] = message
        self.on_change()

    def recovered(self, key: int | str) -> None:
        """``key`` works again: forget its error."""
        self._failures.pop(key, None)
        self._retry_at.pop(key, None)
        if self._messages.pop(key, None) is not None:
            self.on_change()

    def failures(self, key: int | str) -> int:
        """Failures of ``key`` in a row."""
        return self._failures.get(key, 0)

    def waiting(self, key: int | str) -> bool:
        """Whether ``key``'s retry is still to come."""
        return self._retry_at.get(key, 0.0) > time.monotonic()

    def latest(self) -> str | None:
        """The newest error message, for ``last_error``."""
        return next(reversed(self._messages.values()), None)

    def next_retry_in(self, *kinds: str) -> float | None:
        """Seconds until the first retry of a target (or of one of ``kinds``) is due, if any."""
        due = [at for key, at in self._retry_at.items() if isinstance(key, int) or key in kinds]
        return max(min(due) - time.monotonic(), 0.0) if due else None

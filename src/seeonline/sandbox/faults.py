"""Fault injection (RPC errors, delays, dropped connections) and the log of calls the sandbox received."""

from __future__ import annotations

import re
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

_MIGRATE = re.compile(r"_MIGRATE_\d+$")
_UNAUTHORIZED = ("AUTH_KEY_", "SESSION_", "USER_DEACTIVATED")


def method_name(request: Any) -> str:
    """The TL name of a Telethon request object, e.g. ``contacts.resolveUsername``."""
    cls = type(request)
    name = cls.__name__.removesuffix("Request")
    name = name[:1].lower() + name[1:]
    namespace = cls.__module__.rsplit(".", 1)[-1]
    return name if namespace == "functions" else f"{namespace}.{name}"


def normalize_method(method: str) -> str:
    """A comparison key that equates ``contacts.ResolveUsernameRequest``, ``contacts.resolveUsername``, etc."""
    key = method.strip().replace("_", "").lower()
    return key.removesuffix("request")


def error_code(message: str) -> int:
    """The RPC error code Telegram uses for an error message."""
    if message.startswith(("FLOOD_WAIT_", "FLOOD_PREMIUM_WAIT_", "SLOWMODE_WAIT_")):
        return 420
    if message.startswith(_UNAUTHORIZED) or message == "SESSION_PASSWORD_NEEDED":
        return 401
    if _MIGRATE.search(message):
        return 303
    if message.startswith(("INTERNAL", "RPC_CALL_FAIL", "RPC_MCGET_FAIL")):
        return 500
    if message.startswith(("USER_DEACTIVATED_BAN", "PHONE_NUMBER_BANNED")):
        return 403
    return 400


@dataclass
class Fault:
    """One injected misbehaviour: an error, a delay, or a dropped connection, for matching calls."""

    method: str = "*"
    error: str | None = None
    code: int | None = None
    account: int | None = None
    count: int | None = None
    delay: float = 0.0
    drop: bool = False
    id: int = 0

    def matches(self, method: str, account_id: int | None) -> bool:
        """Whether this fault applies to a call of ``method`` by ``account_id``."""
        if self.account is not None and self.account != account_id:
            return False
        if self.method == "*":
            return True
        wanted = normalize_method(self.method)
        actual = normalize_method(method)
        # A bare name ("ResolveUsernameRequest") matches whatever namespace the call has.
        return wanted == actual or ("." not in wanted and actual.rsplit(".", 1)[-1] == wanted)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready description."""
        return asdict(self)


@dataclass(frozen=True)
class Call:
    """One RPC the sandbox received."""

    account_id: int | None
    method: str
    request: str
    time: float
    error: str | None = None
    connection: int = 0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready description."""
        return asdict(self)


class FaultInjector:
    """Holds the active faults and the bounded call log; the RPC layer consults it on every call."""

    def __init__(self, max_calls: int = 100_000) -> None:
        self.faults: list[Fault] = []
        self.calls: deque[Call] = deque(maxlen=max_calls)
        self._next_id = 0

    def add(self, fault: Fault) -> Fault:
        """Activate a fault; it fires ``count`` times (forever when None)."""
        if fault.error is not None and fault.code is None:
            fault.code = error_code(fault.error)
        self._next_id += 1
        fault.id = self._next_id
        self.faults.append(fault)
        return fault

    def remove(self, fault_id: int | None = None) -> int:
        """Remove one fault by id, or all of them; returns how many were removed."""
        before = len(self.faults)
        self.faults = [f for f in self.faults if fault_id is not None and f.id != fault_id]
        return before - len(self.faults)

    def take(self, method: str, account_id: int | None) -> Fault | None:
        """The first fault matching this call, consuming one of its uses."""
        for fault in self.faults:
            if fault.matches(method, account_id):
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count <= 0:
                        self.faults.remove(fault)
                return fault
        return None

    def record(
        self, account_id: int | None, method: str, request: str, error: str | None = None, connection: int = 0
    ) -> None:
        """Append a call to the log."""
        self.calls.append(Call(account_id, method, request, time.time(), error, connection))

"""Builders and polling helpers for the supervisor tests."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any, NamedTuple

import asyncpg
import psutil

_sequence = itertools.count(1)


class Event(NamedTuple):
    """One line of the fake worker's events.log."""

    kind: str
    tracker: int
    pid: int
    at: float


async def make_tracker(db: asyncpg.Connection[Any], *, active: bool = True, session: str | None = "s") -> int:
    """A runnable tracker account with a setting, straight in SQL; returns its id."""
    n = next(_sequence) + int(time.time() * 1000) % 1_000_000 * 1000
    tracker_id: int = await db.fetchval(
        """INSERT INTO tracker_accounts (telegram_id, api_id, api_hash_encrypted, api_hash_lookup, api_hash_masked,
                                         is_active, is_auth)
           VALUES ($1::bigint, $2, 'enc', md5($1::bigint::text), 'ab…cd', $3, true) RETURNING id""",
        10_000 + n,
        (20_000 + n) % 2_000_000_000,
        active,
    )
    await db.execute(
        "INSERT INTO tracker_settings (tracker_account_id, phone_number, session_encrypted, max_users) "
        "VALUES ($1, $2, $3, 10)",
        tracker_id,
        f"+1{n:012d}",
        session,
    )
    return tracker_id


def read_events(control: Path) -> list[Event]:
    """Every event the fake workers wrote so far."""
    path = control / "events.log"
    if not path.exists():
        return []
    events = []
    for line in path.read_text().splitlines():
        kind, tracker, pid, at = line.split()
        events.append(Event(kind, int(tracker), int(pid), float(at)))
    return events


def events_of(control: Path, kind: str, tracker: int) -> list[Event]:
    """Events of one kind for one tracker."""
    return [e for e in read_events(control) if e.kind == kind and e.tracker == tracker]


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) process."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False

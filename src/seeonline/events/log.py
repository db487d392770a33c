"""Reading the event log (``events``, via the ``so_event_feed`` view) and the one rule of who hears what.

Event ids follow commit order (``db/sql/07_events.sql``), so "every event with id > cursor, in id
order" is a complete, gap-free continuation for any reader, however late a batch committed.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any, TypeAlias

import asyncpg

from seeonline.choices import EventType, NotifyMode

# A plain or pooled connection (this module is shared with the supervisor, which has no web layer).
Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"

FEED_COLUMNS = "id, type, recorded_at, is_online, tracked_user_id, telegram_user_id, notify_mode, mute_until, data"
PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One event as readers see it: routing facts, the subscriber's preferences, and its JSON."""

    id: int
    type: str
    recorded_at: datetime.datetime
    is_online: bool | None
    tracked_user_id: int
    telegram_user_id: int
    notify_mode: str
    mute_until: datetime.datetime | None
    data: str


@dataclass(frozen=True, slots=True)
class EventFilter:
    """What one stream or webhook wants: whose events, which types, and whether preferences apply."""

    types: frozenset[str] = frozenset({EventType.STATUS})
    telegram_user_id: int | None = None
    tracked_user_id: int | None = None
    notify_only: bool = False

    @property
    def route(self) -> tuple[int | None, int | None]:
        """The ``(telegram_user_id, tracked_user_id)`` this filter narrows to (None: any)."""
        return self.telegram_user_id, self.tracked_user_id

    def matches(self, event: EventRecord, now: datetime.datetime) -> bool:
        """True when this reader gets ``event`` (``notify_only`` applies notify_mode and mute_until)."""
        if event.type not in self.types:
            return False
        if self.telegram_user_id is not None and event.telegram_user_id != self.telegram_user_id:
            return False
        if self.tracked_user_id is not None and event.tracked_user_id != self.tracked_user_id:
            return False
        return not self.notify_only or notification_wanted(event, now)

    def narrowing(self, args: list[Any]) -> str:
        """SQL conditions that pre-select this filter's events (``matches`` still decides)."""
        args.append(sorted(self.types))
        conditions = [f"type = ANY(${len(args)}::text[])"]
        if self.telegram_user_id is not None:
            args.append(self.telegram_user_id)
            conditions.append(f"telegram_user_id = ${len(args)}")
        if self.tracked_user_id is not None:
            args.append(self.tracked_user_id)
            conditions.append(f"tracked_user_id = ${len(args)}")
        return " AND ".join(conditions)


def notification_wanted(event: EventRecord, now: datetime.datetime) -> bool:
    """Whether the subscription's ``notify_mode`` and ``mute_until`` let ``event`` reach ``notify_only`` readers."""
    if event.notify_mode == NotifyMode.NONE or (event.mute_until is not None and event.mute_until > now):
        return False
    if event.type != EventType.STATUS or event.notify_mode == NotifyMode.BOTH:
        return True
    return event.is_online == (event.notify_mode == NotifyMode.ONLINE)


def _record(row: asyncpg.Record) -> EventRecord:
    return EventRecord(*row.values())


async def read_after(
    connection: Connection, after_id: int, *, narrowed_to: EventFilter | None = None, limit: int = PAGE_SIZE
) -> list[EventRecord]:
    """Up to ``limit`` events with id > ``after_id`` in id order (only those ``narrowed_to`` may match)."""
    args: list[Any] = [after_id, limit]
    condition = narrowed_to.narrowing(args) if narrowed_to is not None else "true"
    rows = await connection.fetch(
        f"SELECT {FEED_COLUMNS} FROM so_event_feed WHERE id > $1 AND {condition} ORDER BY id LIMIT $2", *args
    )
    return [_record(row) for row in rows]


async def last_event_id(connection: Connection) -> int:
    """The newest event id (0 when the log is empty)."""
    found: int = await connection.fetchval("SELECT coalesce(max(id), 0) FROM events")
    return found


async def oldest_retained_id(connection: Connection) -> int | None:
    """The oldest event still kept (``None`` when the log is empty); older cursors need a reset."""
    found: int | None = await connection.fetchval("SELECT min(id) FROM events")
    return found

"""One LISTEN connection per process, fanning the event log out to every open stream.

The hub follows the log with its own cursor: a notification on ``seeonline_events`` (or a reconnect
of the listener, or a periodic check) wakes its reader, which reads every event after the cursor from
the pool and hands each to the streams whose filter matches it. Streams hold no database connection
while they wait. Each has a bounded buffer: a stream that falls too far behind is closed, and its
client resumes by id.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
from collections import defaultdict, deque

import asyncpg
from litestar.response import ServerSentEventMessage

from seeonline.api.errors import ApiError
from seeonline.database.channels import CHANNEL_EVENTS
from seeonline.database.errors import DATABASE_ERRORS
from seeonline.database.listener import PgListener
from seeonline.events.log import EventFilter, EventRecord, last_event_id, read_after
from seeonline.logging import get_logger
from seeonline.waiting import wait_event

log = get_logger(__name__)

STREAMS_PER_KEY = 32
BUFFER_EVENTS = 5000  # a stream further behind than this is closed (its client resumes by id)
RECHECK_INTERVAL = 5.0  # read the log even without a notification this often
RETRY_DELAY = 0.5


class EncodedEvent(ServerSentEventMessage):
    """An SSE message encoded once and shared by every stream that sends it."""

    def __init__(self, event: EventRecord) -> None:
        super().__init__(data=event.data, event=event.type, id=event.id)
        self.event_id = event.id
        self._encoded = super().encode()

    def encode(self) -> bytes:
        """The bytes on the wire (computed once)."""
        return self._encoded


class Subscriber:
    """One open stream's place in the hub: its filter and the events waiting to be sent."""

    def __init__(self, key: str, event_filter: EventFilter, start: int | None) -> None:
        self.key = key
        self.filter = event_filter
        # The hub's cursor when the stream subscribed: everything after it reaches ``pending``.
        self.start = start
        self.pending: deque[EncodedEvent] = deque()
        self.ready = asyncio.Event()
        self.closed = False  # fell behind, or the hub stopped

    def offer(self, message: EncodedEvent) -> None:
        """Queue ``message``; past the bound the stream is closed instead."""
        if self.closed:
            return
        if len(self.pending) >= BUFFER_EVENTS:
            self.close()
            return
        self.pending.append(message)
        self.ready.set()

    def close(self) -> None:
        """End this stream; the client resumes by id."""
        self.closed = True
        self.pending.clear()
        self.ready.set()


class EventHub:
    """Follows the event log for the whole process and fans it out to the subscribed streams."""

    def __init__(self, dsn: str, pool: asyncpg.Pool, *, ping_interval: float = 15.0) -> None:
        self.pool = pool
        self.ping_interval = ping_interval
        self.cursor: int | None = None  # the last event handed out (None until the first connect)
        self._by_person: dict[int | None, set[Subscriber]] = defaultdict(set)
        self._per_key: dict[str, int] = defaultdict(int)
        self._wake = asyncio.Event()
        self._listener = PgListener(
            dsn, [CHANNEL_EVENTS], on_notify=self._on_notify, on_connect=self._resync, name="events"
        )
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def connected(self) -> asyncio.Event:
        """Set while the LISTEN connection is up (after its resync)."""
        return self._listener.connected

    @property
    def reconnects(self) -> int:
        """How many times the listener reconnected."""
        return self._listener.reconnects

    async def start(self) -> None:
        """Start listening and reading."""
        self._tasks = [
            asyncio.create_task(self._listener.run(), name="events-listener"),
            asyncio.create_task(self._read_forever(), name="events-reader"),
        ]

    async def stop(self) -> None:
        """Close every stream and stop listening."""
        for group in self._by_person.values():
            for subscriber in group:
                subscriber.close()
        await self._listener.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def subscribe(self, api_key: str, event_filter: EventFilter) -> Subscriber:
        """Register a stream (before it reads its backlog, so nothing falls between); 429 past the limit."""
        key = hashlib.sha256(api_key.encode("utf-8", "surrogateescape")).hexdigest()
        if self._per_key[key] >= STREAMS_PER_KEY:
            raise ApiError(429, f"at most {STREAMS_PER_KEY} open event streams per API key", code="too_many_streams")
        self._per_key[key] += 1
        subscriber = Subscriber(key, event_filter, self.cursor)
        self._by_person[event_filter.telegram_user_id].add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Forget a stream that ended."""
        group = self._by_person.get(subscriber.filter.telegram_user_id)
        if group is None or subscriber not in group:
            return
        group.discard(subscriber)
        if not group:
            del self._by_person[subscriber.filter.telegram_user_id]
        self._per_key[subscriber.key] -= 1
        if not self._per_key[subscriber.key]:
            del self._per_key[subscriber.key]

    def open_streams(self) -> int:
        """How many streams are subscribed."""
        return sum(len(group) for group in self._by_person.values())

    def _on_notify(self, _channel: str, _payload: str) -> None:
        self._wake.set()

    async def _resync(self) -> None:
        # Notifications may have been missed while disconnected: read from the cursor again.
        if self.cursor is None:
            async with self.pool.acquire() as connection:
                self.cursor = await last_event_id(connection)
        self._wake.set()

    async def _read_forever(self) -> None:
        while True:
            await wait_event(self._wake, RECHECK_INTERVAL)
            self._wake.clear()
            if self.cursor is None:
                continue
            try:
                await self._read_new()
            except DATABASE_ERRORS as exc:
                log.warning("events_read_failed", error=repr(exc))
                await asyncio.sleep(RETRY_DELAY)
                self._wake.set()

    async def _read_new(self) -> None:
        while self.cursor is not None:
            async with self.pool.acquire() as connection:
                events = await read_after(connection, self.cursor)
            if not events:
                return
            self._fan_out(events)
            self.cursor = events[-1].id
            await asyncio.sleep(0)  # let the streams write between pages

    def _fan_out(self, events: list[EventRecord]) -> None:
        now = datetime.datetime.now(datetime.UTC)
        everyone = self._by_person.get(None, set())
        for event in events:
            message: EncodedEvent | None = None
            for group in (everyone, self._by_person.get(event.telegram_user_id, set())):
                for subscriber in group:
                    if subscriber.filter.matches(event, now):
                        message = message or EncodedEvent(event)
                        subscriber.offer(message)

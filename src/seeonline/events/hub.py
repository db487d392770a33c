"""One LISTEN connection per process, fanning the event log out to every open stream.

The hub follows the log with its own cursor: a notification on ``seeonline_events`` (or a reconnect
of the listener, or a periodic check) wakes its reader, which reads every event after the cursor from
the pool, once for all streams, and hands each filter's share of it to that filter's streams as one
shared ``Chunk`` (see ``routing``). Streams hold no database connection while they wait. Each has a
bounded buffer of chunks: a stream that falls too far behind is closed, and its client resumes by id.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
from collections import defaultdict

import asyncpg

from seeonline.api.errors import ApiError
from seeonline.database.channels import CHANNEL_EVENTS
from seeonline.database.errors import DATABASE_ERRORS
from seeonline.database.listener import PgListener
from seeonline.events.log import EventFilter, EventRecord, last_event_id, read_after
from seeonline.events.routing import Router
from seeonline.events.wire import Chunk
from seeonline.logging import get_logger
from seeonline.waiting import wait_event

log = get_logger(__name__)

STREAMS_PER_KEY = 32
BUFFER_EVENTS = 5000  # a stream further behind than this is closed (its client resumes by id)
RECHECK_INTERVAL = 5.0  # read the log even without a notification this often
RETRY_DELAY = 0.5
PING_CHECKS = 10  # idle streams are looked for this many times per ping interval (a ping is up to 10 % late)


class Subscriber:
    """One open stream's place in the hub: its filter and the chunks waiting to be sent."""

    __slots__ = ("closed", "filter", "key", "pending", "pending_events", "sent_at", "start", "waiter")

    def __init__(self, key: str, event_filter: EventFilter, start: int | None) -> None:
        self.key = key
        self.filter = event_filter
        # The hub's cursor when the stream subscribed: everything after it reaches ``pending``.
        self.start = start
        self.pending: list[Chunk] = []  # shared with the other streams of this filter: never changed
        self.pending_events = 0
        self.waiter: asyncio.Future[bool] | None = None  # set while the stream waits for news
        self.sent_at = 0.0  # loop time of the stream's last write (the hub pings streams idle for long)
        self.closed = False  # fell behind, or the hub stopped

    def offer(self, chunk: Chunk) -> None:
        """Queue ``chunk``; past the bound the stream is closed instead."""
        if self.closed:
            return
        self.pending_events += len(chunk.ids)
        if self.pending_events > BUFFER_EVENTS:
            self.close()
            return
        self.pending.append(chunk)
        self._wake(True)

    def take(self, limit: int) -> list[Chunk]:
        """The oldest pending chunks, up to about ``limit`` bytes (at least one when any wait)."""
        pending = self.pending
        size = count = 0
        while count < len(pending) and (not count or size < limit):
            size += len(pending[count].encoded)
            count += 1
        taken, self.pending = pending[:count], pending[count:]
        self.pending_events -= sum(len(chunk.ids) for chunk in taken)
        return taken

    async def wait(self) -> bool:
        """Wait until a chunk is offered or the stream is closed (True), or a ping is due (False)."""
        if self.pending or self.closed:
            return True
        # A future, not an Event with a timeout: no task and no timer per wait (the hub's ticker pings).
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.waiter = waiter
        try:
            return await waiter
        finally:
            self.waiter = None

    def close(self) -> None:
        """End this stream; the client resumes by id."""
        self.closed = True
        self.pending = []
        self.pending_events = 0
        self._wake(True)

    def ping(self) -> None:
        """Wake the waiting stream to send a ping."""
        self._wake(False)

    def _wake(self, news: bool) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(news)


class EventHub:
    """Follows the event log for the whole process and fans it out to the subscribed streams."""

    def __init__(self, dsn: str, pool: asyncpg.Pool, *, ping_interval: float = 15.0) -> None:
        self.pool = pool
        self.ping_interval = ping_interval
        self.cursor: int | None = None  # the last event handed out (None until the first connect)
        self._router: Router[Subscriber] = Router()
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
            asyncio.create_task(self._ping_forever(), name="events-pings"),
        ]

    async def stop(self) -> None:
        """Close every stream and stop listening."""
        for subscriber in self._router:
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
        self._router.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Forget a stream that ended."""
        if not self._router.remove(subscriber):
            return
        self._per_key[subscriber.key] -= 1
        if not self._per_key[subscriber.key]:
            del self._per_key[subscriber.key]

    def open_streams(self) -> int:
        """How many streams are subscribed."""
        return len(self._router)

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

    async def _ping_forever(self) -> None:
        # One ticker for every stream: a waiting stream that sent nothing for a ping interval is woken to ping.
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.ping_interval / PING_CHECKS)
            due = loop.time() - self.ping_interval
            for subscriber in self._router:
                if subscriber.waiter is not None and subscriber.sent_at <= due:
                    subscriber.ping()

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
        for group, chunk in self._router.route(events, datetime.datetime.now(datetime.UTC)):
            for subscriber in group.members:
                subscriber.offer(chunk)

"""One client's SSE stream: its backlog after a cursor (with reset and skipped), then live events and pings.

Order of work, so nothing falls between the backlog and the live feed: the stream subscribes to the
hub first (live events start queueing), then reads the backlog from the database page by page, then
sends what the hub queued, dropping ids it already sent. A database outage while reading the backlog
is waited out (with pings); the live part needs no database at all.

Writes are coalesced: a backlog page goes out as one write, and so does everything the hub queued since
the stream's last write (up to ``WRITE_LIMIT`` bytes a write), so a stream that is behind catches up in
a few large writes instead of one per event. A single queued chunk is sent as the hub built it.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

import asyncpg
from litestar.response import ServerSentEventMessage

from seeonline.database.errors import DATABASE_ERRORS
from seeonline.events.hub import EventHub, Subscriber
from seeonline.events.log import PAGE_SIZE, EventFilter, last_event_id, oldest_retained_id, read_after
from seeonline.events.wire import PING, Chunk, Frame, encode_control, encode_event
from seeonline.logging import get_logger

log = get_logger(__name__)

BACKLOG_RETRY = 1.0
WRITE_LIMIT = 64 * 1024  # bytes joined into one write (a chunk the hub built is never split)


@dataclass(frozen=True)
class StreamRequest:
    """What a client asked for: its filter, where to resume, and how old a backlog may be sent in full."""

    filter: EventFilter
    after_id: int | None  # None: live events only
    max_age_s: float


class EventStream:
    """The messages of one stream, as an async iterator for Litestar's ``ServerSentEvent``."""

    def __init__(self, hub: EventHub, pool: asyncpg.Pool, request: StreamRequest, subscriber: Subscriber) -> None:
        self.hub = hub
        self.pool = pool
        self.request = request
        self.subscriber = subscriber
        self.cursor = 0

    async def messages(self) -> AsyncGenerator[ServerSentEventMessage, None]:
        """Backlog, then live events; ends when the client goes, falls behind, or the hub stops."""
        try:
            async for message in self._backlog():
                yield message
            async for message in self._live():
                yield message
        finally:
            self.hub.unsubscribe(self.subscriber)

    async def _backlog(self) -> AsyncIterator[ServerSentEventMessage]:
        while True:
            try:
                async with self.pool.acquire() as connection:
                    newest = await last_event_id(connection)
                    oldest = await oldest_retained_id(connection) if self.request.after_id is not None else None
                break
            except DATABASE_ERRORS as exc:
                log.warning("events_backlog_failed", error=repr(exc))
                yield PING
                await asyncio.sleep(BACKLOG_RETRY)
        # Live from where the hub was when the stream subscribed (events after it are queued for us).
        live_from = self.subscriber.start if self.subscriber.start is not None else newest
        if self.request.after_id is None:
            self.cursor = live_from
            return
        self.cursor = self.request.after_id
        if oldest is not None and self.cursor + 1 < oldest:
            # Older than what is kept: say so, and continue with live events.
            self.cursor = live_from
            body = {"reason": "expired", "oldest_retained_id": oldest, "last_id": newest}
            yield Frame(encode_control("reset", live_from, body))
            return
        skipped, first_skipped = 0, 0
        out: list[bytes] = []  # written as one chunk at the end of each page, or at WRITE_LIMIT bytes
        size = 0
        threshold = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=self.request.max_age_s)
        while True:
            try:
                async with self.pool.acquire() as connection:
                    page = await read_after(connection, self.cursor, narrowed_to=self.request.filter, limit=PAGE_SIZE)
            except DATABASE_ERRORS as exc:
                log.warning("events_backlog_failed", error=repr(exc))
                yield PING
                await asyncio.sleep(BACKLOG_RETRY)
                continue
            now = datetime.datetime.now(datetime.UTC)
            for event in page:
                if not self.request.filter.matches(event, now):
                    continue
                if event.recorded_at < threshold:
                    # Too old to be news: collapsed into one ``skipped`` before the first fresh event.
                    skipped, first_skipped = skipped + 1, first_skipped or event.id
                    self.cursor = event.id
                    continue
                if skipped:
                    out.append(_skipped(skipped, first_skipped, self.cursor))
                    skipped = 0
                self.cursor = event.id
                out.append(encode_event(event))
                size += len(out[-1])
                if size >= WRITE_LIMIT:
                    yield Frame(b"".join(out))
                    out, size = [], 0
            if page:
                self.cursor = max(self.cursor, page[-1].id)
            if out:
                yield Frame(b"".join(out))
                out, size = [], 0
            if len(page) < PAGE_SIZE:
                break
        if skipped:
            yield Frame(_skipped(skipped, first_skipped, self.cursor))

    async def _live(self) -> AsyncIterator[ServerSentEventMessage]:
        subscriber = self.subscriber
        loop = asyncio.get_running_loop()
        subscriber.sent_at = loop.time()
        while not subscriber.closed:
            if not await subscriber.wait():
                subscriber.sent_at = loop.time()
                yield PING
                continue
            if subscriber.closed:
                break
            message = self._fresh(subscriber.take(WRITE_LIMIT))
            if message is not None:
                subscriber.sent_at = loop.time()
                yield message
        log.info("events_stream_closed", behind=subscriber.closed)

    def _fresh(self, chunks: list[Chunk]) -> ServerSentEventMessage | None:
        """What of ``chunks`` this stream has not sent yet, as one message (None: all of it was sent)."""
        cursor = self.cursor
        fresh = [chunk for chunk in chunks if chunk.last_id > cursor]
        if not fresh:
            return None
        self.cursor = fresh[-1].last_id
        if len(fresh) == 1 and fresh[0].first_id > cursor:
            return fresh[0]  # as the hub built it, shared with every stream of this filter
        # The first chunk may hold events the backlog already sent: only what is after the cursor.
        return Frame(b"".join([fresh[0].after(cursor), *(chunk.encoded for chunk in fresh[1:])]))


def _skipped(count: int, first_id: int, last_id: int) -> bytes:
    return encode_control("skipped", last_id, {"count": count, "first_id": first_id, "last_id": last_id})

"""One client's SSE stream: its backlog after a cursor (with reset and skipped), then live events and pings.

Order of work, so nothing falls between the backlog and the live feed: the stream subscribes to the
hub first (live events start queueing), then reads the backlog from the database page by page, then
sends what the hub queued, dropping ids it already sent. A database outage while reading the backlog
is waited out (with pings); the live part needs no database at all.
"""

from __future__ import annotations

import asyncio
import datetime
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
from litestar.response import ServerSentEventMessage

from seeonline.database.errors import DATABASE_ERRORS
from seeonline.events.hub import EncodedEvent, EventHub, Subscriber
from seeonline.events.log import PAGE_SIZE, EventFilter, last_event_id, oldest_retained_id, read_after
from seeonline.logging import get_logger
from seeonline.waiting import wait_event

log = get_logger(__name__)

BACKLOG_RETRY = 1.0


@dataclass(frozen=True)
class StreamRequest:
    """What a client asked for: its filter, where to resume, and how old a backlog may be sent in full."""

    filter: EventFilter
    after_id: int | None  # None: live events only
    max_age_s: float


def _control(event: str, event_id: int, body: dict[str, object]) -> ServerSentEventMessage:
    return ServerSentEventMessage(data=json.dumps(body, separators=(",", ":")), event=event, id=event_id)


PING = ServerSentEventMessage(data=None, comment="ping")


class Joined(ServerSentEventMessage):
    """Several encoded messages sent as one chunk."""

    def __init__(self, encoded: bytes) -> None:
        super().__init__(data=None)
        self._encoded = encoded

    def encode(self) -> bytes:
        """The messages' bytes, already encoded."""
        return self._encoded


class EventStream:
    """The messages of one stream, as an async iterator for Litestar's ``ServerSentEvent``."""

    def __init__(self, hub: EventHub, pool: asyncpg.Pool, request: StreamRequest, subscriber: Subscriber) -> None:
        self.hub = hub
        self.pool = pool
        self.request = request
        self.subscriber = subscriber
        self.cursor = 0

    async def messages(self) -> AsyncIterator[ServerSentEventMessage]:
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
            yield _control("reset", live_from, {"reason": "expired", "oldest_retained_id": oldest, "last_id": newest})
            return
        skipped, first_skipped = 0, 0
        threshold = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=self.request.max_age_s)
        while True:
            try:
                async with self.pool.acquire() as connection:
                    page = await read_after(connection, self.cursor, narrowed_to=self.request.filter)
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
                    yield _control(
                        "skipped", self.cursor, {"count": skipped, "first_id": first_skipped, "last_id": self.cursor}
                    )
                    skipped = 0
                self.cursor = event.id
                yield EncodedEvent(event)
            if page:
                self.cursor = max(self.cursor, page[-1].id)
            if len(page) < PAGE_SIZE:
                break
        if skipped:
            yield _control(
                "skipped", self.cursor, {"count": skipped, "first_id": first_skipped, "last_id": self.cursor}
            )

    async def _live(self) -> AsyncIterator[ServerSentEventMessage]:
        subscriber = self.subscriber
        while not subscriber.closed:
            await wait_event(subscriber.ready, self.hub.ping_interval)
            if subscriber.closed:
                break
            if not subscriber.ready.is_set():
                yield PING
                continue
            subscriber.ready.clear()
            fresh: list[bytes] = []
            while subscriber.pending:
                message = subscriber.pending.popleft()
                if message.event_id <= self.cursor:
                    continue  # already sent from the backlog
                self.cursor = message.event_id
                fresh.append(message.encode())
            if fresh:
                # Whatever queued since the last write goes out in one write (a busy stream, one syscall).
                yield Joined(b"".join(fresh))
        log.info("events_stream_closed", behind=subscriber.closed)

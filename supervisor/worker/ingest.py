"""Status ingestion: observed transitions buffered and written in idempotent batches, one statement each.

A worker ``submit``s every status it observes for a target (online/offline at a time). The writer
coalesces whatever arrived while the previous batch was in flight and writes it in one transaction:
one INSERT that fans each *change* out to every subscribed TrackedUser (one NOTIFY per batch, fired by
the statement trigger), and the targets' last state. A batch is removed from the buffer only after its
commit, so nothing is lost while Postgres is away; it is retried as a whole, and transitions not newer
than ``targets.last_status_at`` are skipped, so a retry after an unseen commit duplicates nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import asyncpg

from seeonline.choices import StatusSource, Visibility
from seeonline.database.errors import DATABASE_ERRORS
from seeonline.logging import get_logger
from seeonline.waiting import wait_event
from seeonline_supervisor.metrics import BATCH_WRITE_SECONDS, BUFFERED_TRANSITIONS, TRANSITIONS

log = get_logger("supervisor.worker.ingest")

VISIBILITIES = frozenset(Visibility)

# Transitions are compared per target, in time order, with the target's last recorded state; only
# changes become rows. Rows for targets locked in id order so concurrent writers cannot deadlock.
INSERT_TRANSITIONS = """
WITH batch AS (
    SELECT b.target_id, b.is_online, b.at, b.source, b.ord
    FROM unnest($1::bigint[], $2::boolean[], $3::timestamptz[], $4::text[])
         WITH ORDINALITY AS b(target_id, is_online, at, source, ord)
),
locked AS (
    SELECT t.id, t.last_is_online, t.last_status_at
    FROM targets t
    WHERE t.id = ANY ($1::bigint[])
    ORDER BY t.id
    FOR NO KEY UPDATE
),
observed AS (
    SELECT b.target_id, b.is_online, b.at, b.source,
           coalesce(lag(b.is_online) OVER (PARTITION BY b.target_id ORDER BY b.at, b.ord), l.last_is_online) AS before
    FROM batch b
    JOIN locked l ON l.id = b.target_id
    WHERE l.last_status_at IS NULL OR b.at > l.last_status_at
),
changes AS (
    SELECT target_id, is_online, at, source FROM observed WHERE before IS DISTINCT FROM is_online
),
inserted AS (
    INSERT INTO online_statuses (created_at, tracked_user_id, is_online, source)
    SELECT c.at, u.id, c.is_online, c.source
    FROM changes c
    JOIN tracked_users u ON u.target_id = c.target_id
    ORDER BY c.at, u.id
    RETURNING 1
),
latest AS (
    SELECT DISTINCT ON (target_id) target_id, is_online, at FROM changes ORDER BY target_id, at DESC
),
moved AS (
    -- Going offline ends the online interval's expiry; an online's expiry comes with UPDATE_EXPIRY.
    UPDATE targets t SET last_is_online = l.is_online, last_status_at = l.at,
                         online_expires_at = CASE WHEN l.is_online THEN t.online_expires_at END
    FROM latest l
    WHERE t.id = l.target_id
    RETURNING 1
)
SELECT (SELECT count(*) FROM changes) AS changes, (SELECT count(*) FROM inserted) AS rows,
       (SELECT count(*) FROM moved) AS targets
"""

# Visibility is a state, not a transition: the latest value wins; tracked users see it as visible_online.
UPDATE_VISIBILITY = f"""
WITH wanted AS (
    SELECT v.target_id, v.visibility FROM unnest($1::bigint[], $2::text[]) AS v(target_id, visibility)
),
changed AS (
    UPDATE targets t SET visibility = w.visibility
    FROM wanted w
    WHERE t.id = w.target_id AND t.visibility IS DISTINCT FROM w.visibility
    RETURNING t.id
)
UPDATE tracked_users u SET visible_online = (w.visibility = '{Visibility.VISIBLE}')
FROM wanted w
WHERE u.target_id = w.target_id AND w.visibility <> '{Visibility.UNKNOWN}'
  AND u.visible_online IS DISTINCT FROM (w.visibility = '{Visibility.VISIBLE}')
"""


# When an online target's ``expires`` runs out (persisted, so whoever runs the target next, or the
# supervisor's housekeeping, can close the interval at that time; see so_close_expired_online).
UPDATE_EXPIRY = """
UPDATE targets t SET online_expires_at = e.expires
FROM unnest($1::bigint[], $2::timestamptz[]) AS e(target_id, expires)
WHERE t.id = e.target_id AND t.last_is_online AND t.online_expires_at IS DISTINCT FROM e.expires
"""


class Transition(NamedTuple):
    """A target observed online or offline at ``at`` (timezone-aware)."""

    target_id: int
    is_online: bool
    at: datetime
    source: StatusSource = StatusSource.PUSH


@dataclass(frozen=True)
class BatchResult:
    """What one committed batch did."""

    transitions: int
    changes: int
    rows: int
    visibility_updates: int
    seconds: float


async def write_batch(
    connection: asyncpg.Connection[Any],
    transitions: list[Transition],
    visibility: dict[int, str] | None = None,
    expiries: dict[int, datetime] | None = None,
) -> BatchResult:
    """Write one batch in one transaction; safe to repeat (already-recorded transitions are skipped)."""
    began = time.perf_counter()
    changes = rows = 0
    async with connection.transaction():
        if transitions:
            record = await connection.fetchrow(
                INSERT_TRANSITIONS,
                [t[0] for t in transitions],
                [t[1] for t in transitions],
                [t[2] for t in transitions],
                [t[3] for t in transitions],
            )
            assert record is not None
            changes, rows = int(record["changes"]), int(record["rows"])
        if visibility:
            await connection.execute(UPDATE_VISIBILITY, list(visibility), list(visibility.values()))
        if expiries:
            await connection.execute(UPDATE_EXPIRY, list(expiries), list(expiries.values()))
    return BatchResult(len(transitions), changes, rows, len(visibility or ()), time.perf_counter() - began)


Connect = Callable[[], Awaitable["asyncpg.Connection[Any]"]]


class StatusWriter:
    """Buffers transitions and writes them in batches on its own connection, retrying while Postgres is away."""

    def __init__(
        self,
        dsn: str | None = None,
        *,
        connect: Connect | None = None,
        max_batch: int = 20_000,
        linger: float = 0.005,
        max_retry_delay: float = 2.0,
        on_commit: Callable[[BatchResult], None] | None = None,
    ) -> None:
        if connect is None:
            if dsn is None:
                msg = "StatusWriter needs a dsn or a connect function"
                raise ValueError(msg)
            connect = _connector(dsn)
        self._connect = connect
        self.max_batch = max_batch
        self.linger = linger
        self.max_retry_delay = max_retry_delay
        self.on_commit = on_commit
        self._buffer: list[Transition] = []
        self._visibility: dict[int, str] = {}
        self._expiries: dict[int, datetime] = {}
        self._wakeup = asyncio.Event()
        self._urgent = asyncio.Event()
        self._progress = asyncio.Event()
        self._connection: asyncpg.Connection[Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.submitted = 0
        self.committed = 0
        self.rows_written = 0
        self.batches = 0
        self.failures = 0
        self.failing_since: float | None = None  # monotonic time writes began to fail (None: they work)
        self.last_error: str | None = None

    # --- producer side ------------------------------------------------------------------------

    def submit(self, transition: Transition) -> None:
        """Queue one observed status; never blocks, never fails."""
        self._buffer.append(transition)
        self.submitted += 1
        self._wakeup.set()

    def submit_many(self, transitions: Iterable[Transition]) -> None:
        """Queue several observed statuses."""
        before = len(self._buffer)
        self._buffer.extend(transitions)
        self.submitted += len(self._buffer) - before
        self._wakeup.set()

    def set_visibility(self, target_id: int, visibility: str) -> None:
        """Queue a target's visibility; only the latest value per target is written."""
        if visibility not in VISIBILITIES:
            msg = f"unknown visibility {visibility!r}"
            raise ValueError(msg)
        self._visibility[target_id] = visibility
        self._wakeup.set()

    def set_expiry(self, target_id: int, expires: datetime) -> None:
        """Queue when the target's current online status expires; only the latest value per target is written."""
        self._expiries[target_id] = expires
        self._wakeup.set()

    @property
    def pending(self) -> int:
        """Transitions and target updates (visibility, expiry) not yet committed."""
        return len(self._buffer) + len(self._visibility) + len(self._expiries)

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background writer on the running loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="status-writer")

    async def flush(self, within: float | None = None) -> bool:
        """Wait (up to ``within`` seconds) until everything submitted so far is committed."""
        target = self.submitted
        deadline = None if within is None else time.monotonic() + within
        self._urgent.set()
        while True:
            self._progress.clear()
            if self.committed >= target and not self._visibility and not self._expiries:
                return True
            if self._task is None or self._task.done():
                return False
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            await wait_event(self._progress, remaining)

    async def close(self, within: float | None = 10.0) -> bool:
        """Flush (up to ``within`` seconds), then stop; True when nothing was left behind."""
        flushed = await self.flush(within)
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._drop_connection()
        if not flushed:
            log.error("status_writer_closed_with_pending", pending=self.pending)
        return flushed

    # --- the writer loop ----------------------------------------------------------------------

    async def _run(self) -> None:
        delay = 0.05
        while not self._closing:
            await self._wakeup.wait()
            self._wakeup.clear()
            if self.linger > 0 and len(self._buffer) < self.max_batch and not self._urgent.is_set():
                # A short pause lets a burst become one batch (and one NOTIFY) at little latency cost.
                await wait_event(self._urgent, self.linger)
            while self._buffer or self._visibility or self._expiries:
                try:
                    await self._write_once()
                except Exception as exc:
                    # Postgres away, or a bug: either way the batch stays buffered and is retried; the
                    # worker's health shows ``writer_failing`` meanwhile.
                    self.failures += 1
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    if self.failing_since is None:
                        self.failing_since = time.monotonic()
                    BUFFERED_TRANSITIONS.set(self.pending)
                    if isinstance(exc, DATABASE_ERRORS):
                        log.warning("status_write_failed", error=self.last_error, pending=self.pending)
                    else:
                        log.exception("status_write_crashed", pending=self.pending)
                    await self._drop_connection()
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.max_retry_delay)
                else:
                    delay = 0.05
                    self.failing_since = self.last_error = None
            if not self._buffer and not self._visibility and not self._expiries:
                self._urgent.clear()

    async def _write_once(self) -> None:
        connection = await self._ensure_connection()
        batch = self._buffer[: self.max_batch]
        visibility = dict(self._visibility)
        expiries = dict(self._expiries)
        result = await write_batch(connection, batch, visibility, expiries)
        del self._buffer[: len(batch)]
        for target_id, value in visibility.items():
            # A newer value set while this batch was in flight stays queued.
            if self._visibility.get(target_id) == value:
                del self._visibility[target_id]
        for target_id, expires in expiries.items():
            if self._expiries.get(target_id) == expires:
                del self._expiries[target_id]
        self.committed += len(batch)
        TRANSITIONS.inc(len(batch))
        BATCH_WRITE_SECONDS.observe(result.seconds)
        BUFFERED_TRANSITIONS.set(self.pending)
        self.rows_written += result.rows
        self.batches += 1
        self._progress.set()
        if self.on_commit is not None:
            self.on_commit(result)

    async def _ensure_connection(self) -> asyncpg.Connection[Any]:
        if self._connection is None or self._connection.is_closed():
            self._connection = await self._connect()
        return self._connection

    async def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 2)
            if not connection.is_closed():
                connection.terminate()


def _connector(dsn: str) -> Connect:
    async def connect() -> asyncpg.Connection[Any]:
        return await asyncpg.connect(dsn, timeout=5, command_timeout=60)

    return connect

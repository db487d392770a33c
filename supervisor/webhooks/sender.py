"""One webhook's delivery loop: batches after its cursor, in order, with retries and a cursor per 2xx.

Only the holder of the webhook's advisory lock runs this (``supervisor.webhooks.deliverer``). The
cursor moves only after the endpoint acknowledged a batch, and only from the value the batch was read
after, so a restart resends nothing acknowledged and skips nothing unacknowledged. Events the webhook
does not want (other people, other types, muted) move the cursor without a POST.
"""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import asyncpg
import httpx

from seeonline import secrets
from seeonline.choices import WebhookState
from seeonline.database.errors import DATABASE_ERRORS
from seeonline.events.log import EventFilter, EventRecord, read_after
from seeonline.logging import get_logger
from seeonline.settings import Settings
from seeonline.waiting import wait_event
from seeonline_supervisor.webhooks.backoff import gives_up, retry_delay
from seeonline_supervisor.webhooks.http import DeliveryError, post_batch

log = get_logger(__name__)

BATCH_EVENTS = 100
IDLE_RECHECK = 30.0  # woken by notifications; this is only the safety net
ERROR_RETRY = 1.0

WEBHOOK_ROW = """
SELECT url, events, telegram_user_id, notify_only, secret_encrypted, state, cursor, attempts,
       failing_since, next_attempt_at
FROM webhooks WHERE id = $1
"""
ACKNOWLEDGED = """
UPDATE webhooks SET cursor = $3, attempts = 0, failing_since = NULL, next_attempt_at = NULL, last_error = NULL,
                    last_delivered_at = CASE WHEN $4 THEN now() ELSE last_delivered_at END
WHERE id = $1 AND cursor = $2
"""
FAILED = """
UPDATE webhooks SET attempts = $3, failing_since = $4, next_attempt_at = $5, last_error = $6, state = $7
WHERE id = $1 AND cursor = $2
"""


def batch_body(events: list[EventRecord]) -> bytes:
    """The POST body: a JSON array of ``{"id", "event", "data"}``, ``data`` as the SSE stream sends it."""
    return ("[" + ",".join(f'{{"id":{e.id},"event":"{e.type}","data":{e.data}}}' for e in events) + "]").encode()


class WebhookSender:
    """Delivers one webhook until it is deleted or disabled (or the task is cancelled)."""

    def __init__(self, webhook_id: int, pool: asyncpg.Pool, http: httpx.AsyncClient, settings: Settings) -> None:
        self.webhook_id = webhook_id
        self.pool = pool
        self.http = http
        self.settings = settings
        self.wake = asyncio.Event()
        self._stopping = False

    def request_stop(self) -> None:
        """Return from ``run()`` once the delivery under way (its cursor included) is done."""
        self._stopping = True
        self.wake.set()

    async def run(self) -> None:
        """Deliver, wait, repeat; returns when the webhook is gone or disabled, or after ``request_stop``."""
        while not self._stopping:
            try:
                delay = await self.step()
            except DATABASE_ERRORS as exc:
                log.warning("webhook_step_failed", webhook_id=self.webhook_id, error=repr(exc))
                delay = ERROR_RETRY
            if delay is None:
                return
            if delay > 0:
                await wait_event(self.wake, delay)
            self.wake.clear()

    async def step(self) -> float | None:
        """One delivery attempt; the seconds to wait before the next (``None``: stop)."""
        async with self.pool.acquire() as connection:
            row = await connection.fetchrow(WEBHOOK_ROW, self.webhook_id)
            if row is None or row["state"] != WebhookState.ACTIVE:
                return None
            now = datetime.datetime.now(datetime.UTC)
            if row["next_attempt_at"] is not None and row["next_attempt_at"] > now:
                # Backing off; an edit of the webhook (or a re-enable) wakes us earlier.
                waiting: datetime.timedelta = row["next_attempt_at"] - now
                return waiting.total_seconds()
            wanted = EventFilter(
                types=frozenset(row["events"]), telegram_user_id=row["telegram_user_id"], notify_only=row["notify_only"]
            )
            scanned = await read_after(connection, row["cursor"], narrowed_to=wanted)
        batch: list[EventRecord] = []
        reached = row["cursor"]
        for event in scanned:
            if wanted.matches(event, now):
                if len(batch) == BATCH_EVENTS:
                    break
                batch.append(event)
            reached = event.id
        if not batch:
            if reached != row["cursor"]:
                await self._acknowledge(row, reached, delivered=False)
                return 0
            return IDLE_RECHECK
        secret = secrets.decrypt(self._secret_key(), row["secret_encrypted"], secrets.webhook_secret(self.webhook_id))
        try:
            await post_batch(
                self.http,
                row["url"],
                secret,
                batch_body(batch),
                batch[-1].id,
                allow_private=self.settings.webhook_allow_private,
            )
        except DeliveryError as exc:
            return await self._failed(row, str(exc), now)
        await self._acknowledge(row, reached, delivered=True)
        log.info("webhook_delivered", webhook_id=self.webhook_id, events=len(batch), last_id=batch[-1].id)
        return 0

    def _secret_key(self) -> str:
        key = self.settings.secret_key
        if key is None:
            msg = "SEEONLINE_SECRET_KEY: not set (it decrypts webhook secrets)"
            raise RuntimeError(msg)
        return key

    async def _acknowledge(self, row: Any, reached: int, *, delivered: bool) -> None:
        async with self.pool.acquire() as connection:
            await connection.execute(ACKNOWLEDGED, self.webhook_id, row["cursor"], reached, delivered)

    async def _failed(self, row: Any, error: str, now: datetime.datetime) -> float | None:
        scale = self.settings.webhook_retry_scale
        failures = row["attempts"] + 1
        failing_since = row["failing_since"] or now
        if gives_up(failing_since, now, scale):
            state, next_at, delay = WebhookState.DISABLED, None, None
            log.warning("webhook_disabled", webhook_id=self.webhook_id, failures=failures, error=error)
        else:
            delay = retry_delay(failures, scale)
            state, next_at = WebhookState.ACTIVE, now + datetime.timedelta(seconds=delay)
            log.info("webhook_failed", webhook_id=self.webhook_id, failures=failures, retry_in=delay, error=error)
        async with self.pool.acquire() as connection:
            await connection.execute(
                FAILED, self.webhook_id, row["cursor"], failures, failing_since, next_at, error, state
            )
        return delay

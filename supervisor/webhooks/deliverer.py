"""Runs one sender per webhook this host holds the lock of; exactly one host delivers each webhook.

Locks are session advisory locks ``(WEBHOOK_LOCK_SPACE, webhook id)`` on one connection of the
deliverer's own: when the host dies the connection drops and another host's deliverer takes the
webhook over (within ``claim_interval``); when this host loses the connection it stops every sender
first, so two hosts never deliver one webhook at once (a batch in flight when that happens may be
sent again: receivers de-duplicate by ``X-SeeOnline-Event-Id``). Each webhook has its own task, so a
slow or dead endpoint delays only itself. Events past the retention are pruned here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import time
from typing import Any

import asyncpg
import httpx

from seeonline.choices import WebhookState
from seeonline.database.channels import CHANNEL_EVENTS, CHANNEL_WEBHOOKS, WEBHOOK_LOCK_SPACE
from seeonline.database.errors import DATABASE_ERRORS
from seeonline.database.listener import PgListener
from seeonline.logging import get_logger
from seeonline.settings import Settings
from seeonline.waiting import wait_event
from seeonline_supervisor.webhooks.http import TIMEOUT
from seeonline_supervisor.webhooks.sender import WebhookSender

log = get_logger(__name__)

PRUNE_INTERVAL = 600.0
# On stop, how long the deliveries under way may take to finish (their cursors with them), so a restart
# resends nothing the endpoints acknowledged; within the supervisor's 10 s wait for the deliverer.
STOP_FINISH = 8.0


class WebhookDeliverer:
    """Claims webhooks by lock and runs their senders until ``stop()``."""

    def __init__(self, settings: Settings, *, claim_interval: float = 1.0) -> None:
        self.settings = settings
        self.claim_interval = claim_interval
        self.senders: dict[int, tuple[WebhookSender, asyncio.Task[None]]] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._locks: asyncpg.Connection[Any] | None = None
        self._pruned_at = 0.0

    def stop(self) -> None:
        """Stop claiming and delivering; ``run()`` returns."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Claim and deliver until stopped."""
        dsn = self.settings.asyncpg_dsn
        pool: asyncpg.Pool = await asyncpg.create_pool(
            dsn, min_size=0, max_size=4, server_settings={"timezone": "UTC", "application_name": "seeonline-webhooks"}
        )
        listener = PgListener(
            dsn,
            [CHANNEL_EVENTS, CHANNEL_WEBHOOKS],
            on_notify=self._on_notify,
            on_connect=self._on_connect,
            name="webhooks",
        )
        listener_task = asyncio.create_task(listener.run(), name="webhooks-listener")
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as http:
                while not self._stopping:
                    try:
                        await self._claim(pool, http)
                        await self._prune(pool)
                    except DATABASE_ERRORS as exc:
                        log.warning("webhooks_claim_failed", error=repr(exc))
                        await self._release_all()
                    await wait_event(self._wake, self.claim_interval)
                    self._wake.clear()
                await self._release_all(finish_within=STOP_FINISH)  # while their HTTP client is open
        finally:
            await self._release_all()
            await listener.stop()
            listener_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener_task
            await pool.close()

    def _on_notify(self, channel: str, payload: str) -> None:
        if channel == CHANNEL_EVENTS:
            for sender, _task in self.senders.values():
                sender.wake.set()
            return
        with contextlib.suppress(ValueError):
            entry = self.senders.get(int(payload))
            if entry is not None:
                entry[0].wake.set()
        self._wake.set()

    async def _on_connect(self) -> None:
        # Notifications may have been missed: every sender re-reads its webhook.
        for sender, _task in self.senders.values():
            sender.wake.set()
        self._wake.set()

    async def _lock_connection(self) -> asyncpg.Connection[Any]:
        locks = self._locks
        if locks is not None and not locks.is_closed():
            await locks.fetchval("SELECT 1", timeout=10)  # a dead connection means our locks are gone
            return locks
        await self._release_all()
        self._locks = await asyncpg.connect(self.settings.asyncpg_dsn, timeout=10)
        return self._locks

    async def _claim(self, pool: asyncpg.Pool, http: httpx.AsyncClient) -> None:
        locks = await self._lock_connection()
        for webhook_id, (_sender, task) in list(self.senders.items()):
            if task.done():  # deleted or disabled: let another host see it free
                del self.senders[webhook_id]
                await locks.execute("SELECT pg_advisory_unlock($1, $2)", WEBHOOK_LOCK_SPACE, webhook_id)
        active = [
            row[0]
            for row in await locks.fetch(
                "SELECT id FROM webhooks WHERE state = $1 ORDER BY id", str(WebhookState.ACTIVE)
            )
        ]
        for webhook_id in active:
            if webhook_id in self.senders:
                continue
            if await locks.fetchval("SELECT pg_try_advisory_lock($1, $2)", WEBHOOK_LOCK_SPACE, webhook_id):
                sender = WebhookSender(webhook_id, pool, http, self.settings)
                task = asyncio.create_task(sender.run(), name=f"webhook-{webhook_id}")
                self.senders[webhook_id] = (sender, task)
                log.info("webhook_claimed", webhook_id=webhook_id)

    async def _release_all(self, finish_within: float = 0.0) -> None:
        """Stop every sender and free its lock; ``finish_within`` lets deliveries under way complete first.

        Without it (the lock connection is in doubt) they are cancelled at once: the lock may be another
        host's already.
        """
        senders, self.senders = self.senders, {}
        for sender, _task in senders.values():
            sender.request_stop()
        if finish_within and senders:
            await asyncio.wait([task for _sender, task in senders.values()], timeout=finish_within)
        for _sender, task in senders.values():
            task.cancel()
        for _sender, task in senders.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        locks, self._locks = self._locks, None
        if locks is not None and not locks.is_closed():
            try:
                await asyncio.wait_for(locks.close(), 2.0)  # closing frees every lock it holds
            except (*DATABASE_ERRORS, TimeoutError):
                locks.terminate()

    async def _prune(self, pool: asyncpg.Pool) -> None:
        if time.monotonic() - self._pruned_at < PRUNE_INTERVAL:
            return
        self._pruned_at = time.monotonic()
        before = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=self.settings.event_retention_hours)
        pruned = await pool.fetchval("SELECT so_prune_events($1)", before)
        if pruned:
            log.info("events_pruned", count=pruned)

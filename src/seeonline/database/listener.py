"""A LISTEN connection that survives Postgres restarts and resyncs after every (re)connect.

NOTIFY payloads are hints: a listener may miss some while it is disconnected, so after every
successful connect (the first one included) it calls ``on_connect`` to re-read the truth, and only
then waits for notifications again. LISTEN is issued *before* ``on_connect`` runs, so a change
committed during the resync is either seen by it or delivered as a notification afterwards.

Public API::

    listener = PgListener(
        dsn,                                  # asyncpg DSN (``settings.asyncpg_dsn``)
        [CHANNEL_TARGETS],                    # channels to LISTEN on
        on_notify=lambda channel, payload: queue.put_nowait(payload),  # sync; keep it tiny
        on_connect=resync,                    # async () -> None, awaited after each (re)connect
        name="worker",                        # for log events
    )
    task = asyncio.create_task(listener.run())   # runs until cancelled or ``listener.stop()``
    await listener.connected.wait()              # set while connected (after on_connect finished)
    listener.reconnects                          # how many times it connected, minus one
    await listener.stop()                        # closes the connection; run() returns

``on_notify`` is called from asyncpg's protocol callback and must only enqueue or set an event.
If ``on_connect`` raises, the connection is dropped and retried with backoff (the resync is
retried too). Dead connections are found by asyncpg's termination callback and, for silent
network failures, by a ``SELECT 1`` probe every ``probe_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg

from seeonline.database.errors import DATABASE_ERRORS
from seeonline.logging import get_logger
from seeonline.waiting import wait_event

NotifyCallback = Callable[[str, str], None]
ConnectCallback = Callable[[], Awaitable[None]]

log = get_logger(__name__)


class PgListener:
    """LISTEN on channels over one dedicated connection, reconnecting with backoff and resyncing."""

    def __init__(
        self,
        dsn: str,
        channels: Sequence[str],
        *,
        on_notify: NotifyCallback,
        on_connect: ConnectCallback | None = None,
        name: str = "listener",
        reconnect_min: float = 0.05,
        reconnect_max: float = 5.0,
        probe_interval: float = 15.0,
        connect_timeout: float = 10.0,
    ) -> None:
        self.dsn = dsn
        self.channels = tuple(channels)
        self.on_notify = on_notify
        self.on_connect = on_connect
        self.name = name
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self.probe_interval = probe_interval
        self.connect_timeout = connect_timeout
        self.connected = asyncio.Event()
        self.reconnects = -1
        self._lost = asyncio.Event()
        self._stopping = False
        self._connection: asyncpg.Connection[Any] | None = None

    async def run(self) -> None:
        """Connect, LISTEN, resync, wait for loss; repeat until stopped or cancelled."""
        delay = self.reconnect_min
        try:
            while not self._stopping:
                try:
                    await self._connect_once()
                except DATABASE_ERRORS as exc:
                    await self._drop()
                    if self._stopping:
                        break
                    log.warning("listener_connect_failed", listener=self.name, error=repr(exc), retry_in=delay)
                    await asyncio.sleep(delay * (0.5 + random.random()))  # noqa: S311 - jitter, not crypto
                    delay = min(delay * 2, self.reconnect_max)
                    continue
                delay = self.reconnect_min
                await self._wait_until_lost()
                self.connected.clear()
                await self._drop()
                if not self._stopping:
                    log.warning("listener_connection_lost", listener=self.name)
        finally:
            self.connected.clear()
            await self._drop()

    async def stop(self) -> None:
        """Stop reconnecting and close the connection; ``run()`` then returns."""
        self._stopping = True
        self._lost.set()
        await self._drop()

    async def _connect_once(self) -> None:
        self._lost.clear()
        connection: asyncpg.Connection[Any] = await asyncpg.connect(self.dsn, timeout=self.connect_timeout)
        self._connection = connection
        connection.add_termination_listener(self._on_terminated)
        for channel in self.channels:
            await connection.add_listener(channel, self._on_notification)
        if self.on_connect is not None:
            await self.on_connect()
        self.reconnects += 1
        self.connected.set()
        log.info("listener_connected", listener=self.name, channels=list(self.channels), reconnects=self.reconnects)

    async def _wait_until_lost(self) -> None:
        while not self._stopping:
            await wait_event(self._lost, self.probe_interval)
            if self._lost.is_set():
                return
            if not await self._probe():
                return

    async def _probe(self) -> bool:
        connection = self._connection
        if connection is None or connection.is_closed():
            return False
        try:
            await connection.fetchval("SELECT 1", timeout=self.connect_timeout)
        except DATABASE_ERRORS as exc:
            log.warning("listener_probe_failed", listener=self.name, error=repr(exc))
            return False
        return True

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        connection.remove_termination_listener(self._on_terminated)
        if connection.is_closed():
            return
        try:
            await asyncio.wait_for(connection.close(), timeout=2.0)
        except DATABASE_ERRORS:
            connection.terminate()

    def _on_terminated(self, _connection: Any) -> None:
        self._lost.set()

    def _on_notification(self, _connection: Any, _pid: int, channel: str, payload: object) -> None:
        try:
            self.on_notify(channel, str(payload))
        except Exception:
            log.exception("listener_callback_failed", listener=self.name, channel=channel)

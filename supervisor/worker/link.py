"""The worker's Telegram link: connected while the lease allows, resynced after every (re)connect.

Status updates carry no sequence numbers, so nothing replays what was missed while disconnected: after
every connect and reconnect one ``contacts.getStatuses`` (the resync) brings every watched contact's
current status. Connecting happens only while the lease is held (``LeaseKeeper.held``) and under the
gate, bounded by what is left of the grace, so a release never waits past it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from typing import Any

from telethon import TelegramClient, errors

from seeonline.lease import TELEGRAM_DISCONNECT_TIMEOUT
from seeonline.waiting import wait_event
from seeonline_supervisor.metrics import RESYNC_SECONDS, TELEGRAM_CONNECTED
from seeonline_supervisor.worker.call_errors import CallErrors, describe
from seeonline_supervisor.worker.lease import LeaseKeeper
from seeonline_supervisor.worker.options import WorkerOptions
from seeonline_supervisor.worker.telegram import TELEGRAM_ERRORS, ShortFloodWaitError, TelegramSide
from seeonline_supervisor.worker.uptime import UptimeLog

TELEGRAM_CONNECT_TIMEOUT = 30.0  # one Telegram connect attempt, when no lease grace bounds it sooner
STABLE_CONNECTION_S = 10.0  # a connection that dropped sooner after it was made counts as flapping


class ReconnectPacing:
    """The pause before Telethon's own reconnect: none after a connection that held, else growing to a cap.

    Telethon counts an accepted TCP connection as a reconnect that worked, so a peer that accepts and then
    closes at once (a proxy or middlebox in the way) would otherwise be redialled hundreds of times a second.
    """

    def __init__(self, cap: float) -> None:
        self.cap = cap
        self.delay = 0.0
        self.since = time.monotonic()

    def connected(self) -> None:
        """A connection was made now."""
        self.since = time.monotonic()

    def pause(self) -> float:
        """Seconds to wait before reconnecting after a drop now (with jitter, so trackers do not redial together)."""
        if time.monotonic() - self.since >= STABLE_CONNECTION_S:
            self.delay = 0.0
            return 0.0
        self.delay = min(max(self.delay * 2, 0.2), self.cap)
        return random.uniform(self.delay / 2, self.delay)  # noqa: S311 - jitter, not secrecy


class TelegramLink:
    """Runs the ``telegram`` and ``resync`` loops; ``lost_at``/``error``/``resync_wanted_since`` feed health."""

    def __init__(
        self,
        telegram: TelegramSide,
        keeper: LeaseKeeper,
        options: WorkerOptions,
        *,
        connected: asyncio.Event,
        resync: asyncio.Event,
        resynced: asyncio.Event,
        call_errors: CallErrors,
        on_change: Callable[[], None],
        on_resynced: Callable[[], None],
        log: Any,
    ) -> None:
        self.telegram = telegram
        self.client: TelegramClient = telegram.client
        self.keeper = keeper
        self.options = options
        self.connected = connected
        self.resync = resync  # set: a resync is wanted
        self.resynced = resynced  # set once the first resync succeeded
        self.call_errors = call_errors
        self.on_change = on_change
        self.on_resynced = on_resynced
        self.log = log
        self.gate = asyncio.Lock()  # serializes connecting and disconnecting the client
        self.lost_at: float | None = time.monotonic()  # None while connected to Telegram
        self.error: str | None = None
        self.resync_wanted_since: float | None = None  # a resync is due and has not succeeded since
        self.uptime = UptimeLog()  # connected periods, written with the heartbeats
        self.pacing = ReconnectPacing(options.reconnect_max)
        self._hook_reconnect()

    async def disconnect(self) -> None:
        """Disconnect now (bounded)."""
        if self.client.is_connected():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.client.disconnect(), TELEGRAM_DISCONNECT_TIMEOUT)

    async def let_go(self) -> None:
        """Stop using the session (the lease ended): disconnect under the gate."""
        self.connected.clear()
        TELEGRAM_CONNECTED.set(0)
        async with self.gate:
            await self.disconnect()

    def _hook_reconnect(self) -> None:
        # Telethon reconnects on its own and offers no public hook; its sender calls this after each reconnect.
        sender = self.client._sender
        original = sender._auto_reconnect_callback

        start_reconnect = sender._start_reconnect
        reconnect = sender._reconnect

        def dropped(error: Any) -> None:  # the connection broke: blind until the reconnect (history's uptime)
            if sender._user_connected and not sender._reconnecting:
                self.uptime.disconnected()
            start_reconnect(error)

        async def paced_reconnect(last_error: Any) -> None:
            try:
                pause = self.pacing.pause()
                if pause:
                    self.log.warning("worker_telegram_link_unstable", error=repr(last_error), retry_in=round(pause, 3))
                    await asyncio.sleep(pause)
                await reconnect(last_error)
            except asyncio.CancelledError:  # disconnect() cancels the reconnect: leave the sender reusable
                sender._reconnecting = False  # Telethon's reconnect may not have reset it yet; a later connect needs it
                raise
            if sender._user_connected and not sender._reconnecting:
                # Connected, at this very step: the callback runs later, maybe after this connection dropped.
                self.pacing.connected()
                self.uptime.connected()

        async def reconnected() -> None:
            self.log.info("worker_telegram_reconnected")
            self.on_change()
            self.resync.set()
            if original is not None:
                await original()

        sender._start_reconnect = dropped
        sender._reconnect = paced_reconnect
        sender._auto_reconnect_callback = reconnected

    async def run(self) -> None:
        """The ``telegram`` loop: (re)connect whenever the lease allows."""
        delay = 0.2
        while True:
            await self.keeper.held.wait()
            failure: BaseException | None = None
            async with self.gate:
                if not self.keeper.held.is_set():
                    continue  # lost while we waited for the gate
                try:
                    # Bounded by the grace, so a release waiting for the gate never outlasts it.
                    await asyncio.wait_for(self.client.connect(), self.keeper.connect_budget(TELEGRAM_CONNECT_TIMEOUT))
                except TELEGRAM_ERRORS as exc:
                    failure = exc
                    # A connect cut short after its socket was made leaves the client half started (no update
                    # loop: pushes never read), and the next connect() returns at once: start afresh.
                    await self.disconnect()
                if failure is None and not self.keeper.held.is_set():
                    await self.disconnect()  # the grace ended while connecting
                    continue
            if failure is not None:
                self.error = f"cannot connect to Telegram: {failure!r}"
                pause = random.uniform(delay / 2, delay)  # noqa: S311 - jitter: trackers do not reconnect in lockstep
                self.log.warning("worker_telegram_connect_failed", error=repr(failure), retry_in=round(pause, 3))
                await asyncio.sleep(pause)
                delay = min(delay * 2, self.options.reconnect_max)
                continue
            delay = 0.2
            self.connected.set()
            self.pacing.connected()
            self.uptime.connected()
            TELEGRAM_CONNECTED.set(1)
            self.lost_at = self.error = None
            self.on_change()
            self.resync.set()
            with contextlib.suppress(Exception):
                await self.client.disconnected
            self.connected.clear()
            self.uptime.disconnected()
            TELEGRAM_CONNECTED.set(0)
            self.lost_at = time.monotonic()
            self.error = "disconnected from Telegram"
            self.on_change()
            error = getattr(self.client, "_updates_error", None)
            self.log.warning("worker_telegram_disconnected", error=repr(error) if error else None)
            if error is not None:
                # e.g. the session was revoked: a call on a fresh connection classifies it.
                self.resync.set()

    async def run_resyncs(self) -> None:
        """The ``resync`` loop: one ``contacts.getStatuses`` when asked and on a timer."""
        while True:
            await wait_event(self.resync, self.options.resync_interval)
            self.resync.clear()
            if self.resync_wanted_since is None:
                self.resync_wanted_since = time.monotonic()
            await self.connected.wait()
            began = time.monotonic()
            try:
                contacts = await self.telegram.resync()
            except ShortFloodWaitError as wait:
                await asyncio.sleep(wait.seconds)
                self.resync.set()
                continue
            except (*TELEGRAM_ERRORS, ValueError) as exc:
                self.log.warning("worker_resync_failed", error=repr(exc))
                await asyncio.sleep(0.5)
                self.resync.set()
                continue
            except errors.RPCError as exc:
                delay = min(self.call_errors.failed("resync", exc), self.options.resync_retry_max)
                self.log.warning("worker_resync_rpc_error", error=describe(exc), retry_in=delay)
                await wait_event(self.resync, delay)  # a reconnect asks again sooner
                self.resync.set()
                continue
            self.resync_wanted_since = None
            RESYNC_SECONDS.observe(time.monotonic() - began)
            self.call_errors.recovered("resync")
            self.log.debug("worker_resynced", contacts=len(contacts))
            self.resynced.set()
            self.on_resynced()

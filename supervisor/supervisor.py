"""The supervisor: one worker process per runnable tracker, following the database.

The truth is the tables; NOTIFY on ``CHANNEL_TRACKERS`` only wakes the reconcile loop early. A
reconcile runs on start, after every (re)connect of the LISTEN connection, on each notification
(coalesced), on a timer (``settings.reconcile_interval``), when a flood wait ends, every
``lock_poll_interval`` while some tracker's lock is held elsewhere, and when a worker exits.

Two supervisors on one database share the trackers through the workers' advisory locks: a tracker
whose lock is held elsewhere is not forked at all (``pg_locks`` is checked first) and a worker that
loses the race exits with ``EXIT_LOCK_HELD``, which is not a crash. When the other host dies its
locks free and this one starts the tracker within ``lock_poll_interval``.

A worker keeps its Telegram session for a grace after losing its lock (so a Postgres outage loses
nothing), so a free lock alone does not mean the session is free: a tracker whose heartbeat is
younger than ``settings.lease.takeover_delay`` is not started here (it waits in LOCKED, re-checked every
``lock_poll_interval``) unless this supervisor's own worker ran it last. See ``supervisor.trackers``.

A tracker that stops being runnable has its worker drained, not stopped (make before break, see
``supervisor.handover``): it watches the targets it hands over until their new trackers have them.
A drainer whose tracker becomes runnable again is stopped and started afresh.

``stop()`` never waits for the database: a reconcile runs as a task raced against the stop request
and is cancelled by it (a reconcile blocked on a lock would otherwise hold SIGTERM up for good), and
every query of the supervisor's pool has ``command_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import importlib
import multiprocessing.forkserver
import signal
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import msgspec

from seeonline.database.channels import CHANNEL_TRACKERS
from seeonline.database.errors import DATABASE_ERRORS
from seeonline.database.listener import PgListener
from seeonline.database.maintenance import housekeeping
from seeonline.history.storing import store_days
from seeonline.logging import get_logger
from seeonline.settings import Settings
from seeonline.waiting import wait_event
from seeonline_supervisor import trackers
from seeonline_supervisor.credentials import open_credentials, without_secret_environment
from seeonline_supervisor.process import (
    DEFAULT_PRELOAD,
    ProcessOptions,
    State,
    TrackerProcess,
    WorkerTarget,
    forkserver_context,
)
from seeonline_supervisor.webhooks.deliverer import WebhookDeliverer

log = get_logger(__name__)


class SupervisorOptions(msgspec.Struct, frozen=True, kw_only=True):
    """Tunables beyond ``Settings`` (tests and benchmarks shorten them)."""

    process: ProcessOptions = ProcessOptions()
    lock_poll_interval: float = 1.0
    error_retry: float = 1.0
    command_timeout: float = 30.0  # any one query of a reconcile
    preload: tuple[str, ...] = DEFAULT_PRELOAD
    deliver_webhooks: bool = True  # run this host's webhook deliverer (supervisor.webhooks)


def default_target() -> WorkerTarget:
    """The real tracker worker, imported lazily so tests can run without it."""
    # Imported by name: the worker package is optional for the supervisor's own tests.
    run_worker: WorkerTarget = importlib.import_module("seeonline_supervisor.worker.main").run_worker
    return run_worker


class Supervisor:
    """Runs and watches one worker process per runnable tracker until ``stop()``."""

    def __init__(
        self,
        settings: Settings,
        *,
        target: WorkerTarget | None = None,
        options: SupervisorOptions | None = None,
        on_state: Callable[[TrackerProcess], None] | None = None,
    ) -> None:
        self.settings = settings
        self.options = options or SupervisorOptions()
        self.target = target
        self.processes: dict[int, TrackerProcess] = {}
        self.ready = asyncio.Event()
        self._on_state = on_state
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._all_stopped = asyncio.Event()
        self._next_flood_end: datetime.datetime | None = None
        self._next_store = 0.0  # monotonic: days are stored once per reconcile interval, not on every lock poll
        self._delayed: set[int] = set()  # trackers waiting for another host's heartbeat to age (logged once)
        self._pool: asyncpg.Pool[Any] | None = None
        self._context: multiprocessing.context.ForkServerContext | None = None

    def stop(self) -> None:
        """Ask the supervisor to stop its workers and return from ``run()``."""
        self._stopping.set()
        self._wake.set()

    async def run(self, *, handle_signals: bool = False) -> None:
        """Supervise until ``stop()`` (or SIGTERM/SIGINT with ``handle_signals``), then stop every worker."""
        loop = asyncio.get_running_loop()
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop)
        target = self.target or default_target()
        self._context = forkserver_context(self.options.preload)
        # Started here, on the loop's thread, so the server's parent-death signal is tied to it; without the
        # key in its environment, so no worker forked from it inherits the key.
        with without_secret_environment():
            multiprocessing.forkserver.ensure_running()
        listener = PgListener(
            self.settings.asyncpg_dsn,
            [CHANNEL_TRACKERS],
            on_notify=lambda _channel, _payload: self._wake.set(),
            on_connect=self._on_listener_connect,
            name="supervisor",
        )
        listener_task = asyncio.create_task(listener.run(), name="supervisor-listener")
        deliverer = WebhookDeliverer(self.settings) if self.options.deliver_webhooks else None
        deliverer_task = asyncio.create_task(deliverer.run(), name="webhooks") if deliverer else None
        log.info("supervisor_started", preload=list(self.options.preload))
        try:
            await self._loop(target)
        finally:
            if deliverer is not None and deliverer_task is not None:
                deliverer.stop()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(deliverer_task, 10.0)
            await listener.stop()
            listener_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener_task
            await self._shutdown()
            if self._pool is not None:
                try:
                    await asyncio.wait_for(self._pool.close(), 5.0)
                except TimeoutError:
                    self._pool.terminate()
            if handle_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
            log.info("supervisor_stopped")

    async def _on_listener_connect(self) -> None:
        self._wake.set()

    async def _loop(self, target: WorkerTarget) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            try:
                if not await self._reconcile_unless_stopped(target):
                    return
                delay = self._next_delay()
            except DATABASE_ERRORS as exc:
                log.warning("reconcile_failed", error=repr(exc), retry_in=self.options.error_retry)
                delay = self.options.error_retry
            self.ready.set()
            deadline = loop.time() + delay
            while not self._wake.is_set() and loop.time() < deadline:
                await wait_event(self._wake, deadline - loop.time())
            self._wake.clear()

    async def _reconcile_unless_stopped(self, target: WorkerTarget) -> bool:
        """One reconcile, abandoned (cancelled) when ``stop()`` comes first; False then."""
        reconcile = asyncio.create_task(self._reconcile(target), name="supervisor-reconcile")
        stopping = asyncio.create_task(self._stopping.wait(), name="supervisor-stopping")
        try:
            await asyncio.wait({reconcile, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not reconcile.done():
                reconcile.cancel()
                # Its connection's cleanup is bounded too; the pool is terminated on the way out if needed.
                await asyncio.wait({reconcile}, timeout=5.0)
                log.info("reconcile_abandoned_on_stop")
        if not reconcile.done() or reconcile.cancelled():
            return False
        reconcile.result()
        return True

    def _next_delay(self) -> float:
        delay = self.settings.reconcile_interval
        if any(p.state is State.LOCKED for p in self.processes.values()):
            delay = min(delay, self.options.lock_poll_interval)
        if self._next_flood_end is not None:
            left = (self._next_flood_end - datetime.datetime.now(datetime.UTC)).total_seconds()
            delay = min(delay, max(left + 0.05, 0.05))
        return delay

    async def _reconcile(self, target: WorkerTarget) -> None:
        if self._pool is None:  # created here so a database that is down at start-up is retried
            self._pool = await asyncpg.create_pool(
                self.settings.asyncpg_dsn, min_size=1, max_size=2, command_timeout=self.options.command_timeout
            )
        async with self._pool.acquire() as connection:
            await self._record_fatal(connection)
            cleared = await trackers.clear_stale_fatal(connection)
            if cleared:
                log.info("fatal_cleared", tracker_account_ids=cleared)
            await housekeeping(connection, self.settings.status_retention_months, self.settings.move_unresolved_after)
            if time.monotonic() >= self._next_store:
                self._next_store = time.monotonic() + self.settings.reconcile_interval
                await store_days(connection)
            runnable = {
                t.id: t for t in await trackers.runnable_trackers(connection, self.settings.lease.takeover_delay)
            }
            self._next_flood_end = await trackers.next_flood_wait_end(connection)
        if self._stopping.is_set():
            return
        for tracker_id, process in list(self.processes.items()):
            if tracker_id not in runnable and process.state is not State.FATAL:
                process.wanted = False
                process.drain()
                if not process.alive:
                    del self.processes[tracker_id]
        for tracker in runnable.values():
            self._apply(tracker, target)

    def _apply(self, tracker: trackers.RunnableTracker, target: WorkerTarget) -> None:
        assert self._context is not None
        opened = open_credentials(
            self.settings.secret_key, tracker.id, tracker.api_id, tracker.api_hash_encrypted, tracker.session_encrypted
        )
        process = self.processes.get(tracker.id)
        changed = process is None or process.fingerprint != opened.fingerprint
        if changed and opened.credentials is None:  # its worker starts, reports it and exits (FATAL after tries)
            log.error("tracker_credentials_undecryptable", tracker_account_id=tracker.id)
        if process is None:
            process = TrackerProcess(
                tracker.id,
                context=self._context,
                target=target,
                settings=self.settings,
                options=self.options.process,
                on_change=self._on_change,
            )
            process.fingerprint = opened.fingerprint
            self.processes[tracker.id] = process
        process.wanted = True
        if process.state is State.DRAINING:
            log.info("tracker_runnable_again_restarting", tracker_account_id=tracker.id)
            process.stop()  # its exit (wanted again) wakes a reconcile that starts a fresh worker
        if process.fingerprint != opened.fingerprint:
            log.info("tracker_changed_restarting", tracker_account_id=tracker.id)
            process.fingerprint = opened.fingerprint
            process.reset()
            process.stop()
        process.credentials = opened.credentials
        if process.state in (State.STOPPED, State.LOCKED) and not process.alive:
            if tracker.locked:
                if process.state is not State.LOCKED:
                    process.wait_for_lock()
                    log.info("tracker_locked_elsewhere", tracker_account_id=tracker.id)
            elif tracker.heartbeat_fresh_for > 0 and not process.ran_last:
                # Another host's worker may still be in its lease grace, using the session: wait it out.
                process.wait_for_lock()
                if tracker.id not in self._delayed:
                    self._delayed.add(tracker.id)
                    log.info(
                        "tracker_takeover_delayed", tracker_account_id=tracker.id, wait=tracker.heartbeat_fresh_for
                    )
            else:
                self._delayed.discard(tracker.id)
                process.start()

    async def _record_fatal(self, connection: trackers.Connection) -> None:
        for tracker_id, process in list(self.processes.items()):
            if process.state is not State.FATAL:
                continue
            error = (
                f"worker exited {process.fast_exits} times within {self.options.process.start_seconds}s "
                f"of starting; exit codes {process.exit_codes[-process.fast_exits :]}"
            )
            recorded = await trackers.mark_fatal(connection, tracker_id, error)
            log.error("tracker_fatal", tracker_account_id=tracker_id, recorded=recorded, error=error)
            # Either way its worker is gone; it runs again when the tracker shows up as runnable.
            del self.processes[tracker_id]

    def _on_change(self, process: TrackerProcess) -> None:
        if self._on_state is not None:
            self._on_state(process)
        if process.state in (State.FATAL, State.LOCKED, State.BACKOFF) or (
            process.state is State.STOPPED and process.wanted
        ):
            self._wake.set()
        if self._stopping.is_set() and not any(p.alive for p in self.processes.values()):
            self._all_stopped.set()

    async def _shutdown(self) -> None:
        for process in self.processes.values():
            process.wanted = False
            process.stop()
        if any(p.alive for p in self.processes.values()):
            grace = self.options.process.stop_grace
            log.info("supervisor_stopping_workers", count=sum(p.alive for p in self.processes.values()), grace=grace)
            if not await wait_event(self._all_stopped, grace + 5.0):
                for process in self.processes.values():
                    process.kill()
                log.error("supervisor_workers_did_not_exit", pids=[p.pid for p in self.processes.values() if p.alive])
        self.processes.clear()

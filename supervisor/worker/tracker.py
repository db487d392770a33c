"""One tracker's worker: its lease, Telegram connection, resync, targets, enrolment and heartbeats.

Loops (each restarts its own work after errors; an unexpected exception ends the worker as crashed;
an unexpected Telegram ``RPCError`` for one target or one resync is logged, shown in the tracker's
``last_error`` and retried with backoff, while the other targets carry on, see ``call_errors``):
``telegram`` connects and reconnects the client and ``resync`` runs ``contacts.getStatuses`` after every
(re)connect and on a timer (``link``); ``reconcile`` re-reads the tracker's targets on NOTIFY, on reconnect of
the control connection and on a timer; ``enrol`` resolves new targets and adds them as contacts
(``enrolment``); ``control`` keeps the lock, a lease on the Telegram session (``lease``);
``heartbeat`` keeps tracker_health fresh; ``privacy`` checks the tracker's own last-seen rule
(``privacy``).

Draining (``request_drain``, the supervisor's ``DRAIN_SIGNAL`` when the tracker stops being runnable;
or on its own after retiring for a reason that leaves the session usable, ``DRAIN_ON_RETIRE``): no
target is this tracker's any more, so every contact it watches is handed over as in a move (watched
until its new tracker has it, at most ``handover_max``), nothing is enrolled, and the worker exits
once nothing is left to hand over. A dead session (auth lost, banned) cannot watch: that retirement
stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from telethon import TelegramClient, events
from telethon.tl import types

from seeonline.database.errors import DATABASE_ERRORS
from seeonline.health import RUNNING_STATES, HealthState
from seeonline.logging import get_logger
from seeonline.settings import Settings
from seeonline.telegram.privacy import HIDDEN_DETAIL, PrivacyReport
from seeonline.waiting import wait_event
from seeonline_supervisor.credentials import WorkerCredentials
from seeonline_supervisor.exit_codes import EXIT_CRASHED, EXIT_LOCK_HELD, EXIT_OK, EXIT_RETIRED
from seeonline_supervisor.worker.assignment import Assignment
from seeonline_supervisor.worker.book import StatusBook
from seeonline_supervisor.worker.call_errors import CallErrors
from seeonline_supervisor.worker.control import ControlDb, LockHeldError, TargetRow
from seeonline_supervisor.worker.enrolment import Enrolment
from seeonline_supervisor.worker.ingest import StatusWriter
from seeonline_supervisor.worker.lease import LeaseKeeper
from seeonline_supervisor.worker.link import TelegramLink
from seeonline_supervisor.worker.options import WorkerOptions
from seeonline_supervisor.worker.privacy import PrivacyWatch
from seeonline_supervisor.worker.shown_health import transient_health
from seeonline_supervisor.worker.startup import CannotStartError, start_client
from seeonline_supervisor.worker.telegram import ENROLMENT, RetiredError, TelegramSide

# Retirements after which the session still receives status pushes (a long flood wait on contacts.getStatuses
# limits that call, not the updates): the worker drains instead of stopping at once.
DRAIN_ON_RETIRE = frozenset({HealthState.FLOOD_WAIT})


class TrackerWorker:
    """Runs one tracker until asked to stop (``request_stop``) or until the tracker cannot run."""

    def __init__(
        self,
        tracker_id: int,
        settings: Settings,
        options: WorkerOptions | None = None,
        *,
        credentials: WorkerCredentials | None = None,
    ) -> None:
        self.tracker_id = tracker_id
        self.settings = settings
        # Handed over by the supervisor (its workers hold no key); a standalone worker decrypts its own.
        self._credentials = credentials
        self.options = options or WorkerOptions()
        self.lease = settings.lease
        self.log = get_logger("supervisor.worker").bind(tracker_account_id=tracker_id)
        self.stopping = asyncio.Event()
        self.health = HealthState.OK  # what the tracker is; heartbeats may show a transient state over it
        self.health_error: str | None = None
        self.control = ControlDb(
            settings.asyncpg_dsn,
            tracker_id,
            on_targets_changed=self._reconcile_soon,
            on_privacy_requested=self._privacy_requested,
        )
        self.privacy = PrivacyWatch(
            self.control,
            self._privacy_checked,
            interval=self.options.privacy_interval,
            symptom_spacing=self.options.privacy_symptom_spacing,
        )
        self.writer = StatusWriter(settings.asyncpg_dsn, linger=self.options.ingest_linger)
        self.book = StatusBook(self.writer, on_tracker_hidden=self._tracker_hidden)
        self.client: TelegramClient | None = None
        self.telegram: TelegramSide | None = None
        self._outcome: asyncio.Future[int] | None = None
        self._reconcile = asyncio.Event()
        self._resync = asyncio.Event()
        self._enrol = asyncio.Event()
        self._beat = asyncio.Event()
        self._connected = asyncio.Event()
        self._resynced = asyncio.Event()
        self.link: TelegramLink | None = None
        self.keeper = LeaseKeeper(
            self.control,
            self.lease,
            self.options,
            release=self._let_go_of_telegram,
            retaken=self._lock_retaken,
            lost=lambda: self._finish(EXIT_LOCK_HELD),
            log=self.log,
        )
        self.call_errors = CallErrors(
            retry_base=self.options.call_retry_base, retry_max=self.options.call_retry_max, on_change=self._beat.set
        )
        self.enrolment: Enrolment | None = None
        self.assignment = Assignment(self.book, self.options, self.log)
        self._handing_over = self.assignment.handing_over  # shared with enrolment: these stay contacts
        self._enrolment_paused_until: datetime | None = None  # persisted with every heartbeat
        self._move_unresolved = False  # a pause longer than move_unresolved_after: hand unresolved targets on
        self._draining = False  # nothing is ours: hand over what we watch, then exit with _drain_code
        self._drain_code = EXIT_OK

    def request_stop(self) -> None:
        """Stop gracefully: flush what was observed, release the lock, return EXIT_OK."""
        self.stopping.set()

    def request_drain(self) -> None:
        """Hand every watched target over (make before break), enrol nothing, exit once done (EXIT_OK).

        A worker that already retired with a dead session (its book is closed) just stops.
        """
        if self.book.closed or (self._outcome is not None and self._outcome.done()):
            self.request_stop()
            return
        if not self._draining:
            self._draining = True
            self.log.info("worker_draining", watched=len(self.book.targets))
        self._reconcile_soon()
        self._beat.set()

    # --- lifecycle ----------------------------------------------------------------------------

    async def run(self) -> int:
        """Run the worker; returns its exit code (see ``supervisor.worker.options``)."""
        self._outcome = asyncio.get_running_loop().create_future()
        try:
            await self.control.connect()
        except LockHeldError:
            self.log.info("worker_lock_held_elsewhere")
            return EXIT_LOCK_HELD
        try:
            return await self._run_locked()
        finally:
            await self.control.close()

    async def _run_locked(self) -> int:
        row = await self.control.load_tracker()
        credentials, self._credentials = self._credentials, None
        try:
            self.client = start_client(self.tracker_id, row, credentials, self.settings.secret_key)
        except CannotStartError as exc:
            getattr(self.log, exc.level)(exc.event, **exc.fields)
            return exc.code
        assert row is not None
        self.client.add_event_handler(self._on_status, events.Raw(types.UpdateUserStatus))
        self.telegram = TelegramSide(
            self.client,
            self.book,
            short_flood_wait=self.options.short_flood_wait,
            retire=self._retire,
            on_pause=self._paused,
            call_timeout=self.options.call_timeout,
        )
        if row.enrolment_paused_until is not None:
            left = (row.enrolment_paused_until - datetime.now(UTC)).total_seconds()
            if left > 0:  # a flood wait a previous worker of this tracker hit: never resolve into it again
                self.telegram.pause(ENROLMENT, left)
                self._enrolment_paused_until = row.enrolment_paused_until
        self.link = TelegramLink(
            self.telegram,
            self.keeper,
            self.options,
            connected=self._connected,
            resync=self._resync,
            resynced=self._resynced,
            call_errors=self.call_errors,
            on_change=self._beat.set,
            on_resynced=self._enrol.set,
            log=self.log,
        )
        self.enrolment = Enrolment(
            telegram=self.telegram,
            book=self.book,
            control=self.control,
            writer=self.writer,
            options=self.options,
            call_errors=self.call_errors,
            wake=self._enrol,
            ready=self._resynced,
            connected=self._connected,
            handing_over=self._handing_over,
            log=self.log,
        )
        self.assignment.enrolment = self.enrolment
        self.writer.start()
        sent = time.monotonic()
        if row.health == HealthState.PRIVACY_MISCONFIGURED:  # stays so (without targets) until a check says otherwise
            self.health, self.health_error = HealthState.PRIVACY_MISCONFIGURED, HIDDEN_DETAIL
        starting = HealthState.CONNECTING if self.health is HealthState.OK else self.health
        await self.control.set_health(starting, error=self.health_error, was=row.health)  # and last_heartbeat_at
        self.keeper.last_beat = sent
        self.log.info("worker_started", targets_reconcile_interval=self._reconcile_interval)
        loops = [
            self._guard("telegram", self.link.run()),
            self._guard("resync", self.link.run_resyncs()),
            self._guard("reconcile", self._reconcile_loop()),
            self._guard("enrol", self.enrolment.run()),
            self._guard("control", self.keeper.run()),
            self._guard("heartbeat", self._heartbeat_loop()),
            self._guard("privacy", self.privacy.run(self.client, self._connected)),
        ]
        code = await self._wait_for_outcome()
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        if code == EXIT_RETIRED and not self._draining:
            await self._linger()
        await self._shutdown(code)
        return code

    async def _wait_for_outcome(self) -> int:
        assert self._outcome is not None
        stop = asyncio.ensure_future(self.stopping.wait())
        waiting: list[asyncio.Future[Any]] = [stop, self._outcome]
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        return self._outcome.result() if self._outcome.done() else EXIT_OK

    async def _linger(self) -> None:
        """After retiring, wait a little for the supervisor's SIGTERM, so it sees a stop rather than a crash."""
        self.book.close()  # the targets were drained: no expiry may write for them while we wait
        await self._disconnect_telegram()
        await wait_event(self.stopping, self.options.retire_grace)

    def _finish(self, code: int) -> None:
        if self._outcome is not None and not self._outcome.done():
            self._outcome.set_result(code)

    def _guard(self, name: str, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        async def guarded() -> None:
            try:
                await coroutine
            except (asyncio.CancelledError, RetiredError):
                pass
            except Exception:
                self.log.exception("worker_loop_crashed", loop=name)
                self._finish(EXIT_CRASHED)

        return asyncio.get_running_loop().create_task(guarded(), name=f"worker-{name}")

    async def _shutdown(self, code: int) -> None:
        # One budget for the whole stop, inside the supervisor's stop grace: the writer keeps writing
        # while Telegram disconnects, so that time counts towards the flush.
        deadline = time.monotonic() + self.options.flush_timeout
        await self._disconnect_telegram()
        self.book.close()
        flushed = await self.writer.close(within=max(deadline - time.monotonic(), 0.5))
        if code == EXIT_OK:
            with contextlib.suppress(*DATABASE_ERRORS, ConnectionError):
                await self.control.mark_stopped()
        self.log.info("worker_stopped", exit_code=code, flushed=flushed, rows=self.writer.rows_written)

    async def _disconnect_telegram(self) -> None:
        if self.link is not None:
            await self.link.disconnect()

    @property
    def _reconcile_interval(self) -> float:
        return self.options.reconcile_interval or self.settings.reconcile_interval

    # --- health -------------------------------------------------------------------------------

    async def _retire(self, state: HealthState, seconds: float | None, error: str) -> None:
        """Persist an unusable health state (moving the targets away), then end the worker (or drain)."""
        keeps_session = state in DRAIN_ON_RETIRE and not self.book.closed
        if keeps_session and self.health is state:
            return  # retired for this already, and handing over
        until = None if seconds is None else datetime.now(UTC) + timedelta(seconds=seconds)
        self.log.warning("worker_retiring", state=state, until=until, error=error, drains=keeps_session)
        if not keeps_session:
            # The session is dead: nothing here may write for the targets the drain hands to other trackers.
            self.book.close()
        delay = 0.2
        while not self.stopping.is_set():
            try:
                moved = await self.control.set_health(state, until=until, error=error)
            except (*DATABASE_ERRORS, ConnectionError) as exc:
                self.log.warning("worker_health_write_failed", state=state, error=repr(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.options.reconnect_max)
                continue
            self.log.info("worker_retired", state=state, targets_moved=moved)
            break
        self.health = state
        if keeps_session and not self.stopping.is_set():
            self._drain_code = EXIT_RETIRED
            self.request_drain()  # the targets just moved: watch them until their new trackers have them
            return
        self._finish(EXIT_RETIRED)

    def _paused(self, kind: str, seconds: float, error: str) -> None:
        """A long flood wait on ``kind`` of call: the tracker keeps watching, only that kind waits."""
        until = datetime.now(UTC) + timedelta(seconds=seconds)
        self.log.warning("worker_calls_paused", kind=kind, until=until.isoformat(), error=error)
        self.call_errors.note(kind, f"{error}; {kind} paused until {until.isoformat(timespec='seconds')}")
        if kind == ENROLMENT:
            self._enrolment_paused_until = until
            self._move_unresolved = seconds > self.settings.move_unresolved_after

    def _tracker_hidden(self, by_me: bool) -> None:
        if by_me:  # a symptom only: the privacy check (account.getPrivacy) decides the health
            self.privacy.symptom()

    def _privacy_requested(self) -> None:
        self.privacy.requested()

    async def _privacy_checked(self, report: PrivacyReport) -> None:
        """Enter or leave privacy_misconfigured (the state change moves targets away, or brings them)."""
        wanted = HealthState.OK if report.ok else HealthState.PRIVACY_MISCONFIGURED
        if self._draining:
            return  # leaving: its health is its next worker's business
        if self.health not in (HealthState.OK, HealthState.PRIVACY_MISCONFIGURED) or self.health == wanted:
            return
        error = None if report.ok else report.detail
        moved = await self.control.set_health(wanted, error=error, was=self.health)
        self.health, self.health_error = wanted, error
        self.log.warning("worker_tracker_privacy", health=wanted, targets_moved=moved)

    def _shown_health(self) -> tuple[HealthState, str | None]:
        """The state and error a heartbeat reports: why a running worker is not fully working, if it is not."""
        if self.health is not HealthState.OK:
            return self.health, self.health_error or self.call_errors.latest()  # e.g. without targets
        if self._draining:
            return (
                self.health,
                f"draining: watching {len(self._handing_over)} targets until their new trackers have them",
            )
        assert self.link is not None
        transient = transient_health(self.link, self.writer, self.call_errors, self.options)
        if transient is not None:
            return transient
        return self.health, self.health_error or self.call_errors.latest()

    async def _heartbeat_loop(self) -> None:
        while True:
            await wait_event(self._beat, self.lease.heartbeat_interval)
            self._beat.clear()
            if self.health in RUNNING_STATES:
                sent = time.monotonic()
                with contextlib.suppress(*DATABASE_ERRORS, ConnectionError):
                    state, error = self._shown_health()
                    paused = self._enrolment_paused_until
                    if await self.control.heartbeat(state, error, enrolment_paused_until=paused):
                        self.keeper.last_beat = sent
                    if self.link is not None:
                        await self.link.uptime.record(self.control.record_uptime)
                    if self._move_unresolved:
                        moved = await self.control.move_unresolved(self.settings.move_unresolved_after)
                        self._move_unresolved = False
                        self.log.info("worker_unresolved_targets_moved", count=moved)

    # --- the lease ------------------------------------------------------------------------------

    async def _let_go_of_telegram(self) -> None:
        self.book.pause()
        if self.link is not None:
            await self.link.let_go()

    def _lock_retaken(self, rows: list[TargetRow], resumed: bool) -> None:
        self._apply_targets(rows)
        if resumed:
            self.book.resume()  # Telegram connects again (the keeper sets ``held``), and resyncs
        self._reconcile_soon()
        self.privacy.requested()  # a request may have come while we were not listening
        self._beat.set()

    async def _on_status(self, update: Any) -> None:
        self.book.observe(update.user_id, update.status)

    # --- targets ------------------------------------------------------------------------------

    def _reconcile_soon(self) -> None:
        self._reconcile.set()

    async def _reconcile_loop(self) -> None:
        while True:
            try:
                rows = await self.control.load_targets()
            except (*DATABASE_ERRORS, ConnectionError) as exc:
                self.log.info("worker_reconcile_failed", error=repr(exc))
                rows = None
            if rows is not None or self._draining:
                self._apply_targets(rows or [])
            if self._handing_over:
                with contextlib.suppress(*DATABASE_ERRORS, ConnectionError):
                    if await self.assignment.finish_handovers(self.control):
                        self._enrol.set()  # their contacts go
            if self._draining and not self._handing_over:
                self.log.info("worker_drained", exit_code=self._drain_code)
                self._finish(self._drain_code)
                return
            interval = self._reconcile_interval
            if self._handing_over:
                interval = min(interval, self.options.handover_poll)
            await wait_event(self._reconcile, interval)
            self._reconcile.clear()

    def _apply_targets(self, rows: list[TargetRow]) -> None:
        added, gone = self.assignment.apply(rows, draining=self._draining)
        if added or gone:
            self.log.info("worker_targets_reconciled", added=added, removed=gone, total=len(self.book.targets))
            self._enrol.set()
            if added and self._resynced.is_set():
                # Newly assigned targets may already be contacts (this tracker watched them before).
                self._resync.set()

"""One tracker's worker: lock, session, Telegram connection, target reconciliation, enrolment, heartbeats.

Loops (each restarts its own work after errors; an unexpected exception ends the worker as crashed;
an unexpected Telegram ``RPCError`` for one target or one resync is logged, shown in the tracker's
``last_error`` and retried with backoff, while the other targets carry on):
``telegram`` connects and reconnects the client; ``resync`` runs ``contacts.getStatuses`` after every
(re)connect and on a timer; ``reconcile`` re-reads the tracker's targets on NOTIFY, on reconnect of
the control connection and on a timer; ``enrol`` resolves new targets (spaced, once per tracker,
persisted) and adds them as contacts; ``control`` watches the lock and re-takes it when Postgres
comes back; ``heartbeat`` keeps tracker_health fresh; ``privacy`` checks the tracker's own last-seen rule
(``supervisor.worker.privacy``).

The advisory lock is a lease on the Telegram session (two connections of one session kill it:
AUTH_KEY_DUPLICATED), with a grace period so a short Postgres outage loses nothing. When the lock
connection is lost (or a probe of it fails or times out) the worker keeps Telegram connected and keeps
buffering what it observes while it reconnects and re-takes the lock, for up to ``lease_grace``
seconds, and never past ``last heartbeat + heartbeat_interval + lease_grace``. Re-taken in time: it
carries on (the buffer flushes). Not re-taken in time: it disconnects Telegram and holds its expiry
timers, keeps trying, and on re-taking the lock re-reads its targets, reconnects and resyncs. If
another worker took the lock meanwhile, this one flushes what it can and exits with EXIT_LOCK_HELD.

Why another host cannot overlap: a supervisor does not start a tracker whose heartbeat is younger
than its ``takeover_delay`` (> heartbeat_interval + lease_grace) unless it ran that tracker's last
worker itself (``supervisor.trackers``). The heartbeat is written only through the lock connection,
and the worker measures its grace from the moment it sent its last successful heartbeat, so it has let
go of Telegram before that heartbeat is ``takeover_delay`` old.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from telethon import TelegramClient, errors, events
from telethon.errors.rpcerrorlist import rpc_errors_dict
from telethon.tl import types

from seeonline.db_errors import DATABASE_ERRORS
from seeonline.logging import get_logger
from seeonline.secrets import SecretKeyError, decrypt
from seeonline.settings import Settings
from seeonline.telegram.client import build_client
from seeonline.telegram.privacy import HIDDEN_DETAIL, PrivacyReport
from supervisor.ingest import StatusWriter
from supervisor.worker.book import StatusBook, TargetState
from supervisor.worker.control import ControlDb, LockHeldError, TargetRow
from supervisor.worker.options import EXIT_CRASHED, EXIT_LOCK_HELD, EXIT_OK, EXIT_RETIRED, WorkerOptions
from supervisor.worker.privacy import PrivacyWatch
from supervisor.worker.telegram import RetiredError, ShortFloodWaitError, TelegramSide
from supervisor.worker.waiting import wait_event

TELEGRAM_ERRORS = (OSError, ConnectionError, TimeoutError)


class TrackerWorker:
    """Runs one tracker until asked to stop (``request_stop``) or until the tracker cannot run."""

    def __init__(self, tracker_id: int, settings: Settings, options: WorkerOptions | None = None) -> None:
        self.tracker_id = tracker_id
        self.settings = settings
        self.options = options or WorkerOptions()
        self.log = get_logger("supervisor.worker").bind(tracker_account_id=tracker_id)
        self.stopping = asyncio.Event()
        self.health = "ok"
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
        self._lease = asyncio.Event()  # set while we hold the tracker's lock or are in its grace: Telegram may connect
        self._last_beat: float | None = None  # monotonic time the last written heartbeat was sent
        self._telegram_gate = asyncio.Lock()  # serializes connecting and disconnecting the client
        self._resynced = asyncio.Event()
        self._not_found_until: dict[int, float] = {}
        # Unexpected Telegram errors, by target id (or "resync"): the message, failures in a row, retry time.
        self._call_errors: dict[int | str, str] = {}
        self._call_failures: dict[int | str, int] = {}
        self._retry_at: dict[int, float] = {}
        self._leaving: list[tuple[int, int]] = []

    def request_stop(self) -> None:
        """Stop gracefully: flush what was observed, release the lock, return EXIT_OK."""
        self.stopping.set()

    # --- lifecycle ----------------------------------------------------------------------------

    async def run(self) -> int:
        """Run the worker; returns its exit code (see ``supervisor.worker.options``)."""
        self._outcome = asyncio.get_running_loop().create_future()
        try:
            await self.control.connect()
        except LockHeldError:
            self.log.info("worker_lock_held_elsewhere")
            return EXIT_LOCK_HELD
        self._lease.set()
        try:
            return await self._run_locked()
        finally:
            await self.control.close()

    async def _run_locked(self) -> int:
        row = await self.control.load_tracker()
        if row is None or not (row.is_active and row.is_auth and row.session_encrypted):
            self.log.warning("worker_tracker_not_runnable", exists=row is not None)
            return EXIT_RETIRED
        if row.health in ("auth_lost", "banned"):
            self.log.warning("worker_tracker_not_runnable", health=row.health)
            return EXIT_RETIRED
        try:
            secret_key = self.settings.secret_key or ""
            session = decrypt(secret_key, row.session_encrypted)
            api_hash = decrypt(secret_key, row.api_hash_encrypted)
        except SecretKeyError:
            self.log.error("worker_cannot_decrypt_credentials")
            return EXIT_CRASHED
        self.client = build_client(
            session, row.api_id, api_hash, connection_retries=3, retry_delay=0.5, request_retries=2, catch_up=False
        )
        del session, api_hash
        self.client.add_event_handler(self._on_status, events.Raw(types.UpdateUserStatus))
        self._hook_reconnect(self.client)
        self.telegram = TelegramSide(
            self.client, self.book, short_flood_wait=self.options.short_flood_wait, retire=self._retire
        )
        self.writer.start()
        sent = time.monotonic()
        if row.health == "privacy_misconfigured":  # stays so (without targets) until the privacy check says otherwise
            self.health, self.health_error = row.health, HIDDEN_DETAIL
        await self.control.set_health(self.health, error=self.health_error, was=row.health)  # and last_heartbeat_at
        self._last_beat = sent
        self.log.info("worker_started", targets_reconcile_interval=self._reconcile_interval)
        loops = [
            self._guard("telegram", self._telegram_loop()),
            self._guard("resync", self._resync_loop()),
            self._guard("reconcile", self._reconcile_loop()),
            self._guard("enrol", self._enrol_loop()),
            self._guard("control", self._control_loop()),
            self._guard("heartbeat", self._heartbeat_loop()),
            self._guard("privacy", self.privacy.run(self.client, self._connected)),
        ]
        code = await self._wait_for_outcome()
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        if code == EXIT_RETIRED:
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
        await self._disconnect_telegram()
        self.book.close()
        flushed = await self.writer.close(within=self.options.flush_timeout)
        if code == EXIT_OK:
            with contextlib.suppress(*DATABASE_ERRORS, ConnectionError):
                await self.control.mark_stopped()
        self.log.info("worker_stopped", exit_code=code, flushed=flushed, rows=self.writer.rows_written)

    async def _disconnect_telegram(self) -> None:
        client = self.client
        if client is not None and client.is_connected():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.disconnect(), 5)

    @property
    def _reconcile_interval(self) -> float:
        return self.options.reconcile_interval or self.settings.reconcile_interval

    # --- health -------------------------------------------------------------------------------

    async def _retire(self, state: str, seconds: float | None, error: str) -> None:
        """Persist an unusable health state (moving the targets away), then end the worker."""
        until = None if seconds is None else datetime.now(UTC) + timedelta(seconds=seconds)
        self.log.warning("worker_retiring", state=state, until=until, error=error)
        # The drain hands the targets to other trackers: from now on nothing here may write for them.
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
        self._finish(EXIT_RETIRED)

    def _tracker_hidden(self, by_me: bool) -> None:
        if by_me:  # a symptom only: the privacy check (account.getPrivacy) decides the health
            self.privacy.symptom()

    def _privacy_requested(self) -> None:
        self.privacy.requested()

    async def _privacy_checked(self, report: PrivacyReport) -> None:
        """Enter or leave privacy_misconfigured (the state change moves targets away, or brings them)."""
        wanted = "ok" if report.ok else "privacy_misconfigured"
        if self.health not in ("ok", "privacy_misconfigured") or self.health == wanted:
            return
        error = None if report.ok else report.detail
        moved = await self.control.set_health(wanted, error=error, was=self.health)
        self.health, self.health_error = wanted, error
        self.log.warning("worker_tracker_privacy", health=wanted, targets_moved=moved)

    async def _heartbeat_loop(self) -> None:
        while True:
            await wait_event(self._beat, self.options.heartbeat_interval)
            self._beat.clear()
            if self.health in ("ok", "privacy_misconfigured"):
                sent = time.monotonic()
                with contextlib.suppress(*DATABASE_ERRORS, ConnectionError):
                    if await self.control.heartbeat(self.health, self.health_error or self._last_call_error()):
                        self._last_beat = sent

    async def _control_loop(self) -> None:
        while True:
            while not await wait_event(self.control.lost, self.options.lock_probe_interval):
                await self.control.probe(self.options.lock_probe_timeout)
            grace = self._grace_left()
            self.log.warning("worker_control_connection_lost", grace=round(grace, 3))
            expiry = asyncio.get_running_loop().create_task(self._end_grace_after(grace), name="worker-lease-grace")
            try:
                rows = await self._retake_lock()
            except LockHeldError:
                self.log.error("worker_lock_taken_while_disconnected")
                if self._lease.is_set():  # the grace timer still sleeps: let go of the session now
                    expiry.cancel()
                    await self._release_lease()
                self._finish(EXIT_LOCK_HELD)
                return
            finally:
                if self._lease.is_set():
                    expiry.cancel()  # still in grace: nothing was released
                await asyncio.wait({expiry})  # a release under way completes first
            # Targets may have moved while the lock was not ours: re-read them before anything resumes.
            self._apply_targets(rows)
            resumed = not self._lease.is_set()
            self.log.info("worker_control_reconnected", within_grace=not resumed)
            if resumed:
                self.book.resume()
                self._lease.set()  # Telegram connects again, and resyncs
            self._reconcile_soon()
            self.privacy.requested()  # a request may have come while we were not listening
            self._beat.set()

    def _grace_left(self) -> float:
        """How long Telegram may stay connected without the lock (see the module's docstring)."""
        if self._last_beat is None:
            return 0.0
        until = self._last_beat + self.options.heartbeat_interval + self.options.lease_grace
        return max(min(self.options.lease_grace, until - time.monotonic()), 0.0)

    async def _end_grace_after(self, grace: float) -> None:
        await asyncio.sleep(grace)
        self.log.warning("worker_lease_grace_over", grace=round(grace, 3))
        await self._release_lease()

    async def _retake_lock(self) -> list[TargetRow]:
        """Reconnect the control connection until it holds the lock again; returns the targets (LockHeldError)."""
        delay = 0.05
        while True:
            await self.control.close()
            try:
                await self.control.connect()
                return await self.control.load_targets()
            except LockHeldError:
                raise
            except (*DATABASE_ERRORS, ConnectionError) as exc:
                self.log.info("worker_control_reconnect_failed", error=repr(exc), retry_in=delay)
                self.control.lost.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.options.reconnect_max)

    async def _release_lease(self) -> None:
        """The lock may be someone else's now: stop using the session before anything else."""
        self._lease.clear()
        self._connected.clear()
        self.book.pause()
        async with self._telegram_gate:
            await self._disconnect_telegram()

    # --- Telegram connection and resync -------------------------------------------------------

    def _hook_reconnect(self, client: TelegramClient) -> None:
        # Telethon reconnects on its own and offers no public hook; its sender calls this after each reconnect.
        sender = client._sender
        original = sender._auto_reconnect_callback

        async def reconnected() -> None:
            self.log.info("worker_telegram_reconnected")
            self._resync.set()
            if original is not None:
                await original()

        sender._auto_reconnect_callback = reconnected

    async def _telegram_loop(self) -> None:
        assert self.client is not None
        delay = 0.2
        while True:
            await self._lease.wait()
            failure: BaseException | None = None
            async with self._telegram_gate:
                if not self._lease.is_set():
                    continue  # lost while we waited for the gate
                try:
                    await self.client.connect()
                except TELEGRAM_ERRORS as exc:
                    failure = exc
            if failure is not None:
                self.log.warning("worker_telegram_connect_failed", error=repr(failure), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.options.reconnect_max)
                continue
            delay = 0.2
            self._connected.set()
            self._resync.set()
            with contextlib.suppress(Exception):
                await self.client.disconnected
            self._connected.clear()
            error = getattr(self.client, "_updates_error", None)
            self.log.warning("worker_telegram_disconnected", error=repr(error) if error else None)
            if error is not None:
                # e.g. the session was revoked: a call on a fresh connection classifies it.
                self._resync.set()

    async def _resync_loop(self) -> None:
        assert self.telegram is not None
        while True:
            await wait_event(self._resync, self.options.resync_interval)
            self._resync.clear()
            await self._connected.wait()
            try:
                contacts = await self.telegram.resync()
            except ShortFloodWaitError as wait:
                await asyncio.sleep(wait.seconds)
                self._resync.set()
                continue
            except (*TELEGRAM_ERRORS, ValueError) as exc:
                self.log.warning("worker_resync_failed", error=repr(exc))
                await asyncio.sleep(0.5)
                self._resync.set()
                continue
            except errors.RPCError as exc:
                delay = self._call_failed("resync", exc)
                self.log.warning("worker_resync_rpc_error", error=_describe(exc), retry_in=delay)
                await asyncio.sleep(delay)
                self._resync.set()
                continue
            self._call_recovered("resync")
            self.log.debug("worker_resynced", contacts=len(contacts))
            self._resynced.set()
            self._enrol.set()

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
            if rows is not None:
                self._apply_targets(rows)
            await wait_event(self._reconcile, self._reconcile_interval)
            self._reconcile.clear()

    def _apply_targets(self, rows: list[TargetRow]) -> None:
        wanted = {row.target_id: row for row in rows}
        gone = [tid for tid in self.book.targets if tid not in wanted]
        for target_id in gone:
            self._call_recovered(target_id)
            state = self.book.remove(target_id)
            if state is not None and state.is_contact and state.user_id and state.access_hash:
                self._leaving.append((state.user_id, state.access_hash))
        added = 0
        for target_id, row in wanted.items():
            if target_id in self.book.targets:
                continue
            state = TargetState(
                target_id=target_id,
                username=row.username,
                visibility=row.visibility,
                last_online=row.last_is_online,
                last_at=row.last_status_at,
            )
            self.book.add(state)
            if row.user_id is not None and row.access_hash is not None:
                self.book.bind(state, row.user_id, row.access_hash)
            added += 1
        if added or gone:
            self.log.info("worker_targets_reconciled", added=added, removed=len(gone), total=len(self.book.targets))
            self._enrol.set()
            if added and self._resynced.is_set():
                # Newly assigned targets may already be contacts (this tracker watched them before).
                self._resync.set()

    async def _enrol_loop(self) -> None:
        assert self.telegram is not None
        while True:
            await wait_event(self._enrol, self._next_retry_in())
            self._enrol.clear()
            await self._resynced.wait()
            await self._connected.wait()
            try:
                await self._enrol_pending()
            except ShortFloodWaitError as wait:
                self.log.info("worker_flood_wait_sleeping", seconds=wait.seconds)
                await asyncio.sleep(wait.seconds)
                self._enrol.set()
            except (*TELEGRAM_ERRORS, *DATABASE_ERRORS, ConnectionError, ValueError) as exc:
                self.log.warning("worker_enrol_failed", error=repr(exc))
                await asyncio.sleep(1.0)
                self._enrol.set()

    async def _enrol_pending(self) -> None:
        assert self.telegram is not None
        if self._leaving:
            leaving, self._leaving = self._leaving, []
            try:
                await self.telegram.delete_contacts(leaving)
            except errors.RPCError as exc:
                # Not retried: a stale contact only pushes statuses nobody here watches.
                self.log.warning("worker_delete_contacts_failed", error=_describe(exc), contacts=len(leaving))
        now = time.monotonic()
        for target_id in sorted(self.book.targets):
            state = self.book.targets.get(target_id)
            if state is None or state.is_contact or self._not_found_until.get(target_id, 0.0) > now:
                continue
            if self._retry_at.get(target_id, 0.0) > now:
                continue  # an unexpected error earlier: its retry comes later
            if state.user_id is not None and not state.contact_checked:
                continue  # the resync already asked for will tell whether it is still a contact
            try:
                await self._enrol_one(state)
            except errors.RPCError as exc:
                delay = self._call_failed(target_id, exc)
                self.log.warning("worker_target_rpc_error", target_id=target_id, error=_describe(exc), retry_in=delay)

    async def _enrol_one(self, state: TargetState) -> None:
        assert self.telegram is not None
        target_id = state.target_id
        if state.user_id is None and not await self._resolve(state):
            return
        if self.book.targets.get(target_id) is not state:
            return  # moved away while we were resolving
        if await self.telegram.add_contact(state):
            self.log.info("worker_target_enrolled", target_id=target_id, visibility=state.visibility)
            self._call_recovered(target_id)
        else:
            self.log.warning("worker_peer_stale", target_id=target_id)
            await self.control.forget_peer(target_id)
            state.user_id = state.access_hash = None
            self._enrol.set()
        await asyncio.sleep(self.options.contact_interval)

    def _call_failed(self, key: int | str, exc: errors.RPCError) -> float:
        """Remember an unexpected Telegram error (shown in last_error); returns the delay before its retry."""
        failures = self._call_failures.get(key, 0) + 1
        self._call_failures[key] = failures
        delay = min(self.options.call_retry_base * 2.0 ** (failures - 1), self.options.call_retry_max)
        if isinstance(key, int):
            self._retry_at[key] = time.monotonic() + delay
        self._call_errors.pop(key, None)  # re-inserted: the newest error is shown
        self._call_errors[key] = f"target {key}: {_describe(exc)}" if isinstance(key, int) else _describe(exc)
        self._beat.set()
        return delay

    def _call_recovered(self, key: int | str) -> None:
        self._call_failures.pop(key, None)
        if isinstance(key, int):
            self._retry_at.pop(key, None)
        if self._call_errors.pop(key, None) is not None:
            self._beat.set()

    def _last_call_error(self) -> str | None:
        return next(reversed(self._call_errors.values()), None)

    def _next_retry_in(self) -> float | None:
        if not self._retry_at:
            return None
        return max(min(self._retry_at.values()) - time.monotonic(), 0.0)

    async def _resolve(self, state: TargetState) -> bool:
        assert self.telegram is not None
        user = await self.telegram.resolve(state, self.options.resolve_interval)
        if user is None:
            self.log.info("worker_target_not_found", target_id=state.target_id)
            self._not_found_until[state.target_id] = time.monotonic() + self.options.not_found_retry
            if state.visibility != "not_found":
                state.visibility = "not_found"
                self.writer.set_visibility(state.target_id, "not_found")
            return False
        # Persist before using it: a restart must never resolve this username again.
        await self.control.save_peer(state.target_id, user.id, user.access_hash)
        self.book.bind(state, user.id, user.access_hash)
        return True


# Telethon's classes for known errors keep no error name (their ``message`` is the base class's).
_ERROR_NAMES: dict[type, str] = {cls: name for name, cls in rpc_errors_dict.items()}


def _describe(exc: errors.RPCError) -> str:
    """E.g. ``AddContactRequest: 420 FROZEN_METHOD_INVALID``."""
    request = type(exc.request).__name__ if exc.request is not None else "request"
    return f"{request}: {exc.code} {_ERROR_NAMES.get(type(exc), exc.message)}"

"""The worker's lease on its Telegram session: the tracker's advisory lock, held with a grace.

Two connections of one session kill it (AUTH_KEY_DUPLICATED), so the worker may use Telegram only
while it holds the tracker's lock (``ControlDb``) or is within the grace after losing it (the timings
and the trade-off they set are in ``seeonline.lease``). When the lock connection is lost (or a probe of
it fails or times out) the worker keeps Telegram connected and keeps buffering what it observes while
it re-takes the lock, an attempt every half second or so (jittered, bounded by what is left of the
grace), for up to ``grace`` seconds and never past ``last heartbeat + heartbeat_interval + grace``.
Re-taken in time: it carries on (the buffer flushes). Not re-taken in time: it lets go of Telegram,
keeps trying with a jittered backoff, and on re-taking the lock re-reads its targets, reconnects and
resyncs. If another worker took the lock meanwhile, this one exits with EXIT_LOCK_HELD.

Why another host cannot overlap: a supervisor does not start a tracker whose heartbeat is younger
than ``Lease.takeover_delay`` unless it ran that tracker's last worker itself (``supervisor.trackers``).
The heartbeat is written only through the lock connection, and the grace is measured from the moment
the last successful heartbeat was sent, so the worker has let go of Telegram before that heartbeat is
``takeover_delay`` old.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from seeonline.database.errors import DATABASE_ERRORS
from seeonline.lease import Lease
from seeonline.waiting import wait_event
from seeonline_supervisor.worker.control import LOCK_CONNECT_TIMEOUT, ControlDb, LockHeldError, TargetRow
from seeonline_supervisor.worker.options import WorkerOptions

RETAKE_SPACING = (0.25, 0.5)  # seconds between lock re-take attempts during the grace, jittered


class LeaseKeeper:
    """Runs the ``control`` loop: probes the lock, rides out its loss within the grace, lets go after it.

    ``held`` is set while the lock is held or its grace runs: only then may Telegram be connected.
    ``release`` must stop every use of the session; ``retaken(targets, resumed)`` runs when the lock is
    back (``resumed``: after the grace had ended); ``lost`` when another worker has it.
    """

    def __init__(
        self,
        control: ControlDb,
        lease: Lease,
        options: WorkerOptions,
        *,
        release: Callable[[], Awaitable[None]],
        retaken: Callable[[list[TargetRow], bool], None],
        lost: Callable[[], None],
        log: Any,
    ) -> None:
        self.control = control
        self.lease = lease
        self.options = options
        self.held = asyncio.Event()
        self.held.set()  # the worker starts with the lock taken
        self.last_beat: float | None = None  # monotonic time the last written heartbeat was sent
        self._release = release
        self._retaken = retaken
        self._lost = lost
        self.log = log
        self._grace_ends: float | None = None  # monotonic deadline while the lock is lost and the grace runs

    def connect_budget(self, timeout: float) -> float:
        """``timeout``, or less when the lock is lost and the grace ends sooner (at least 0.1 s)."""
        if self._grace_ends is None or not self.held.is_set():
            return timeout
        return max(min(timeout, self._grace_ends - time.monotonic()), 0.1)

    async def run(self) -> None:
        """Watch the lock for the worker's whole life."""
        while True:
            while not await wait_event(self.control.lost, self.options.lock_probe_interval):
                await self.control.probe(self.options.lock_probe_timeout)
            grace = self._grace_left()
            self._grace_ends = time.monotonic() + grace
            self.log.warning("worker_control_connection_lost", grace=round(grace, 3))
            expiry = asyncio.get_running_loop().create_task(self._end_grace_after(grace), name="worker-lease-grace")
            try:
                rows = await self._retake_lock()
            except LockHeldError:
                self.log.error("worker_lock_taken_while_disconnected")
                if self.held.is_set():  # the grace timer still sleeps: let go of the session now
                    expiry.cancel()
                    await self._let_go()
                self._lost()
                return
            finally:
                if self.held.is_set():
                    expiry.cancel()  # still in grace: nothing was released
                await asyncio.wait({expiry})  # a release under way completes first
                self._grace_ends = None
            resumed = not self.held.is_set()
            self.log.info("worker_control_reconnected", within_grace=not resumed)
            # Targets may have moved while the lock was not ours: they are re-read before anything resumes.
            self._retaken(rows, resumed)
            self.held.set()

    def _grace_left(self) -> float:
        """How long Telegram may stay connected without the lock."""
        if self.last_beat is None:
            return 0.0
        until = self.last_beat + self.lease.heartbeat_interval + self.lease.grace
        return max(min(self.lease.grace, until - time.monotonic()), 0.0)

    async def _end_grace_after(self, grace: float) -> None:
        await asyncio.sleep(grace)
        self.log.warning("worker_lease_grace_over", grace=round(grace, 3))
        await self._let_go()

    async def _let_go(self) -> None:
        """The lock may be someone else's now: stop using the session before anything else."""
        self.held.clear()
        await self._release()

    async def _retake_lock(self) -> list[TargetRow]:
        """Reconnect the control connection until it holds the lock again; returns the targets (LockHeldError).

        During the grace every half second or so (jittered, so workers do not reconnect in lockstep), each
        attempt bounded by what is left of the grace; after it, with a jittered backoff.
        """
        delay = RETAKE_SPACING[1]
        while True:
            await self.control.close()
            in_grace = self.held.is_set()
            try:
                await self.control.connect(timeout=self.connect_budget(LOCK_CONNECT_TIMEOUT))
                return await self.control.load_targets()
            except LockHeldError:
                raise
            except (*DATABASE_ERRORS, ConnectionError) as exc:
                if in_grace:
                    pause = random.uniform(*RETAKE_SPACING)  # noqa: S311 - jitter, not a secret
                else:
                    delay = min(delay * 2, self.options.reconnect_max)
                    pause = random.uniform(delay / 2, delay)  # noqa: S311
                self.log.info("worker_control_reconnect_failed", error=repr(exc), retry_in=round(pause, 3))
                self.control.lost.set()
                await asyncio.sleep(pause)

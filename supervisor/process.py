"""One tracker's worker process and its state machine (after Supervisor/supervisor's ``process.py``).

States: STOPPED → STARTING → RUNNING (alive for ``start_seconds``). An unrequested exit goes to
BACKOFF with a delay that doubles per consecutive crash; ``fatal_after`` consecutive exits that
happen before RUNNING make it FATAL. An exit with ``EXIT_LOCK_HELD`` (another host runs the tracker)
goes to LOCKED: not a crash, the supervisor retries when the lock is free. ``EXIT_RETIRED`` (the
worker recorded an unrunnable health, or could not reach Postgres) backs off without counting towards
FATAL; the reconcile it triggers normally stops an unrunnable tracker for good. ``stop()`` sends SIGTERM
(STOPPING), then SIGKILL after the grace period. ``drain()`` (a tracker that stopped being runnable) sends
``DRAIN_SIGNAL`` instead (DRAINING): the worker keeps watching the targets it is handing over and exits
on its own once their new trackers have them (``supervisor.handover``); ``stop()`` follows after
``drain_limit`` if it has not.

Workers are forked by a forkserver that preloaded Telethon and froze its heap, so each one shares
most of its memory. Each child arms ``PR_SET_PDEATHSIG`` (SIGTERM) and a watchdog thread that kills
it ``orphan_grace`` seconds after its parent died, so no worker outlives the supervisor.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import multiprocessing
import multiprocessing.context
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable

import msgspec
from setproctitle import setproctitle

from seeonline.logging import configure_logging, get_logger
from seeonline.parent_death import die_with_parent
from seeonline.settings import Settings
from seeonline.telegram.addresses import adopt_sandboxes, trusted_sandboxes
from seeonline_supervisor.credentials import WorkerCredentials, without_secret_environment
from seeonline_supervisor.exit_codes import EXIT_LOCK_HELD, EXIT_RETIRED
from seeonline_supervisor.handover import DRAIN_MARGIN, DRAIN_SIGNAL, HANDOVER_MAX
from seeonline_supervisor.metrics import WORKER_RESTARTS

# (tracker id, settings without the secret key, the tracker's decrypted credentials or None) -> exit code
WorkerTarget = Callable[[int, Settings, "WorkerCredentials | None"], int]

SUPERVISOR_PID_ENV = "SEEONLINE_SUPERVISOR_PID"  # the forkserver's expected parent
FORKSERVER_PID_ENV = "SEEONLINE_FORKSERVER_PID"  # set in the forkserver: its workers' expected parent
DEFAULT_PRELOAD = ("telethon", "asyncpg", "seeonline.telegram.client", "seeonline_supervisor.worker.main")

log = get_logger(__name__)


class State(enum.Enum):
    """Where a tracker's worker is in its life cycle."""

    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    BACKOFF = "backoff"
    LOCKED = "locked"
    DRAINING = "draining"  # not wanted any more; watching what it hands over until its new trackers have it
    STOPPING = "stopping"
    FATAL = "fatal"


# Where each state may lead; every change goes through TrackerProcess._set, which checks it.
TRANSITIONS: dict[State, frozenset[State]] = {
    State.STOPPED: frozenset({State.STARTING, State.LOCKED}),
    State.STARTING: frozenset(
        {State.RUNNING, State.DRAINING, State.STOPPING, State.STOPPED, State.LOCKED, State.BACKOFF, State.FATAL}
    ),
    State.RUNNING: frozenset({State.DRAINING, State.STOPPING, State.STOPPED, State.LOCKED, State.BACKOFF, State.FATAL}),
    State.DRAINING: frozenset({State.STOPPING, State.STOPPED}),
    State.BACKOFF: frozenset({State.STARTING, State.STOPPED}),
    State.LOCKED: frozenset({State.STARTING, State.STOPPED}),
    State.STOPPING: frozenset({State.STOPPED}),
    State.FATAL: frozenset({State.STARTING, State.STOPPED}),
}


class ProcessOptions(msgspec.Struct, frozen=True, kw_only=True):
    """Timings of the state machine."""

    start_seconds: float = 3.0  # alive this long after start → RUNNING
    fatal_after: int = 5  # consecutive exits before RUNNING → FATAL
    backoff_base: float = 0.5
    backoff_max: float = 60.0
    stable_seconds: float = 60.0  # a run this long resets the backoff
    lock_retry: float = 1.0  # retry delay after EXIT_LOCK_HELD
    stop_grace: float = 10.0  # SIGTERM → SIGKILL
    drain_limit: float = HANDOVER_MAX + DRAIN_MARGIN  # DRAIN_SIGNAL → SIGTERM, if the worker is still draining
    orphan_grace: float = 10.0  # a child whose parent died kills itself after this long


def forkserver_context(preload: tuple[str, ...] = DEFAULT_PRELOAD) -> multiprocessing.context.ForkServerContext:
    """A forkserver context whose server preloads ``preload``, ties its life to us and freezes its heap."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([*preload, "seeonline_supervisor.forkserver_init"])
    # Read by supervisor.forkserver_init in the server: it must equal the server's parent pid.
    os.environ[SUPERVISOR_PID_ENV] = str(os.getpid())
    return context


def _watch_parent(parent: int, grace: float) -> None:
    """Kill this process ``grace`` seconds after ``parent`` exits, whatever the worker is doing."""
    try:
        fd = os.pidfd_open(parent)
    except OSError:
        fd = -1
    if fd >= 0:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.poll()
    else:
        while os.getppid() == parent:
            time.sleep(1.0)
    time.sleep(grace)
    os.kill(os.getpid(), signal.SIGKILL)


def child_main(
    target: WorkerTarget,
    tracker_id: int,
    settings: Settings,
    credentials: WorkerCredentials | None,
    *,
    orphan_grace: float,
    sandboxes: frozenset[tuple[str, int]] = frozenset(),
) -> None:
    """Entry point in the forked child: arm the death signals, configure logging, run the worker."""
    # Forked by the forkserver, which announced its pid: a different parent means it died meanwhile.
    parent = int(os.environ.get(FORKSERVER_PID_ENV, "0")) or os.getppid()
    if not die_with_parent(signal.SIGTERM, parent):
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # ^C reaches the whole group; the supervisor decides
    # Until the worker handles it: a drain request before then must not kill it (it re-reads its tracker at start).
    signal.signal(DRAIN_SIGNAL, signal.SIG_IGN)
    setproctitle(f"seeonline worker tracker={tracker_id}")
    threading.Thread(target=_watch_parent, args=(parent, orphan_grace), daemon=True, name="orphan-watch").start()
    configure_logging(settings.log_level, json=settings.log_json)
    # The forkserver's environment dates from its start; the sandboxes trusted now come over the pipe.
    adopt_sandboxes(sandboxes)
    sys.exit(target(tracker_id, settings, credentials))


class TrackerProcess:
    """The worker process of one tracker, driven by the supervisor's event loop."""

    def __init__(
        self,
        tracker_id: int,
        *,
        context: multiprocessing.context.ForkServerContext,
        target: WorkerTarget,
        settings: Settings,
        options: ProcessOptions,
        on_change: Callable[[TrackerProcess], None],
    ) -> None:
        self.tracker_id = tracker_id
        self._state = State.STOPPED
        self.fingerprint: str | None = None
        self.credentials: WorkerCredentials | None = None  # what the next worker gets (set by the supervisor)
        self.wanted = False
        self.fast_exits = 0
        self.crashes = 0
        self.exit_codes: list[int] = []
        self.last_exit: int | None = None
        self.process: multiprocessing.process.BaseProcess | None = None
        self._context = context
        self._target = target
        self._settings = msgspec.structs.replace(settings, secret_key=None)  # a worker never holds the key
        self._options = options
        self._on_change = on_change
        self._started_at = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._log = log.bind(tracker_account_id=tracker_id)

    @property
    def state(self) -> State:
        """Where the worker is in its life cycle (changed only by this class, see ``TRANSITIONS``)."""
        return self._state

    @property
    def pid(self) -> int | None:
        """The live worker's pid."""
        return self.process.pid if self.process is not None else None

    @property
    def ran_last(self) -> bool:
        """Whether this supervisor's own worker was the tracker's last one (it did not find the lock held)."""
        return self.process is not None or (self.last_exit is not None and self.last_exit != EXIT_LOCK_HELD)

    @property
    def alive(self) -> bool:
        """Whether a worker process exists (possibly stopping)."""
        return self.process is not None

    def start(self) -> None:
        """Fork a worker now (from STOPPED, BACKOFF, LOCKED or FATAL)."""
        if self.process is not None:
            return
        self._cancel_timer()
        loop = asyncio.get_running_loop()
        process = self._context.Process(
            target=child_main,
            args=(self._target, self.tracker_id, self._settings, self.credentials),
            kwargs={"orphan_grace": self._options.orphan_grace, "sandboxes": trusted_sandboxes()},
            name=f"seeonline-worker-{self.tracker_id}",
            daemon=True,
        )
        with without_secret_environment():  # in case the forkserver has to be (re)started now
            process.start()
        self.process = process
        self._started_at = loop.time()
        loop.add_reader(process.sentinel, self._on_sentinel, process)
        self._set(State.STARTING)
        self._timer = loop.call_later(self._options.start_seconds, self._promote, process)
        self._log.info("worker_started", pid=process.pid)

    def stop(self) -> None:
        """SIGTERM the worker, SIGKILL after the grace period; a no-op without a worker."""
        self._cancel_timer()
        if self.process is None:
            if self.state is not State.FATAL:
                self._set(State.STOPPED)
            return
        if self.state is State.STOPPING:
            return
        self._set(State.STOPPING)
        self._signal(signal.SIGTERM)
        self._timer = asyncio.get_running_loop().call_later(self._options.stop_grace, self._kill, self.process)

    def drain(self) -> None:
        """Ask the worker to hand its targets over and exit (``stop()`` after ``drain_limit``); else ``stop()``."""
        if self.state not in (State.STARTING, State.RUNNING) or self.process is None:
            if self.state is not State.DRAINING:
                self.stop()
            return
        self._cancel_timer()
        self._set(State.DRAINING)
        self._signal(DRAIN_SIGNAL)
        self._timer = asyncio.get_running_loop().call_later(self._options.drain_limit, self._drain_over, self.process)
        self._log.info("worker_draining", pid=self.pid, limit=self._options.drain_limit)

    def _drain_over(self, process: multiprocessing.process.BaseProcess) -> None:
        self._timer = None
        if process is self.process and self.state is State.DRAINING:
            self._log.warning("worker_drain_overran", pid=process.pid, limit=self._options.drain_limit)
            self.stop()

    def wait_for_lock(self) -> None:
        """No worker now: the tracker runs elsewhere, or may still (its heartbeat is fresh); re-checked later."""
        if self.process is None:
            self._set(State.LOCKED)

    def kill(self) -> None:
        """SIGKILL the worker now."""
        if self.process is not None:
            self._signal(signal.SIGKILL)

    def reset(self) -> None:
        """Forget the crash history (the tracker's rows changed, or it left FATAL)."""
        self.fast_exits = 0
        self.crashes = 0
        if self.state is State.FATAL:
            self._set(State.STOPPED)

    def _signal(self, sig: int) -> None:
        pid = self.pid
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)

    def _kill(self, process: multiprocessing.process.BaseProcess) -> None:
        if process is self.process:
            self._log.warning("worker_kill_after_grace", pid=process.pid, grace=self._options.stop_grace)
            self._signal(signal.SIGKILL)

    def _promote(self, process: multiprocessing.process.BaseProcess) -> None:
        if process is self.process and self.state is State.STARTING:
            self.fast_exits = 0
            self._set(State.RUNNING)

    def _on_sentinel(self, process: multiprocessing.process.BaseProcess) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(process.sentinel)
        process.join(0)
        code = process.exitcode if process.exitcode is not None else -1
        process.close()
        if process is not self.process:
            return
        self.process = None
        self._cancel_timer()
        uptime = loop.time() - self._started_at
        self.last_exit = code
        self.exit_codes.append(code)
        del self.exit_codes[:-20]
        previous = self.state
        if previous is State.STOPPING or not self.wanted:
            self._log.info("worker_stopped", exit_code=code, uptime=round(uptime, 3))
            self._set(State.STOPPED)
            return
        if code == EXIT_LOCK_HELD:
            self._log.info("worker_lock_held_elsewhere", retry_in=self._options.lock_retry)
            self._set(State.LOCKED)
            return
        if uptime >= self._options.stable_seconds:
            self.crashes = 0
        self.crashes += 1
        if previous is State.STARTING and code != EXIT_RETIRED:
            self.fast_exits += 1
        if self.fast_exits >= self._options.fatal_after:
            self._log.error("worker_fatal", exit_code=code, fast_exits=self.fast_exits)
            self._set(State.FATAL)
            return
        delay = min(self._options.backoff_base * 2 ** (self.crashes - 1), self._options.backoff_max)
        self._log.warning("worker_exited", exit_code=code, uptime=round(uptime, 3), restart_in=delay)
        WORKER_RESTARTS.inc()
        self._set(State.BACKOFF)
        self._timer = loop.call_later(delay, self._retry)

    def _retry(self) -> None:
        self._timer = None
        if self.wanted and self.state is State.BACKOFF:
            self.start()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _set(self, state: State) -> None:
        if state is self._state:
            return
        assert state in TRANSITIONS[self._state], f"{self._state.value} -> {state.value}"
        self._state = state
        self._on_change(self)

    def __repr__(self) -> str:
        return f"TrackerProcess({self.tracker_id}, {self.state.value}, pid={self.pid})"

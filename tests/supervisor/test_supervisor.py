"""The supervisor in-process with real forked workers (a fake target) and real Postgres."""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest

from seeonline.database.channels import CHANNEL_TRACKERS, TRACKER_LOCK_SPACE
from seeonline.lease import Lease
from seeonline.settings import Settings
from seeonline_supervisor.process import ProcessOptions, State
from seeonline_supervisor.supervisor import Supervisor, SupervisorOptions
from tests.polling import wait_until
from tests.supervisor import fake_worker
from tests.supervisor.helpers import alive, events_of, make_tracker
from tests.support.postgres import PostgresServer

FAST = SupervisorOptions(
    process=ProcessOptions(
        start_seconds=0.5,
        fatal_after=3,
        backoff_base=0.2,
        backoff_max=2.0,
        stop_grace=1.0,
        lock_retry=0.2,
        drain_limit=1.0,
    ),
    lock_poll_interval=0.2,
)
LEASE = Lease(grace=15.0)  # a takeover delay of 30 s


class Running:
    """A supervisor task and where its fake workers report."""

    def __init__(self, supervisor: Supervisor, task: asyncio.Task[None], control: Path) -> None:
        self.supervisor = supervisor
        self.task = task
        self.control = control

    def state(self, tracker: int) -> str | None:
        """The tracker's process state, or None when unmanaged."""
        process = self.supervisor.processes.get(tracker)
        return process.state.value if process is not None else None

    def pid(self, tracker: int) -> int | None:
        """The tracker's worker pid."""
        process = self.supervisor.processes.get(tracker)
        return process.pid if process is not None else None

    def acquired(self, tracker: int) -> list[int]:
        """Pids of workers of ``tracker`` that took its lock, oldest first."""
        return [e.pid for e in events_of(self.control, "acquired", tracker)]

    async def stop(self) -> None:
        """Stop the supervisor and wait for it."""
        self.supervisor.stop()
        await asyncio.wait_for(self.task, 30)


@pytest.fixture
async def running(settings: Settings, tmp_path: Path) -> AsyncIterator[Running]:
    """A started supervisor with the fake worker."""
    settings = msgspec.structs.replace(settings, reconcile_interval=5.0, lease=LEASE)
    target = functools.partial(fake_worker.run, control_dir=str(tmp_path))
    supervisor = Supervisor(settings, target=target, options=FAST)
    task = asyncio.create_task(supervisor.run())
    await asyncio.wait_for(supervisor.ready.wait(), 30)
    runner = Running(supervisor, task, tmp_path)
    yield runner
    if not task.done():
        await runner.stop()


async def test_workers_start_and_stop_as_tracker_rows_change(running: Running, db: asyncpg.Connection[Any]) -> None:
    tracker = await make_tracker(db)
    await wait_until(lambda: running.acquired(tracker), what="worker started")
    first = running.acquired(tracker)[0]
    await wait_until(lambda: running.state(tracker) == "running", what="RUNNING")

    await db.execute("UPDATE tracker_accounts SET is_active = false WHERE id = $1", tracker)
    # Not stopped but drained (make before break); the fake worker exits at once on that.
    await wait_until(lambda: events_of(running.control, "drained", tracker), what="drain request")
    await wait_until(lambda: not alive(first) and running.state(tracker) is None, what="worker gone")

    await db.execute("UPDATE tracker_accounts SET is_active = true WHERE id = $1", tracker)
    await wait_until(lambda: len(running.acquired(tracker)) == 2, what="worker restarted")

    # A new session means a new worker; a capacity change does not.
    second = running.acquired(tracker)[1]
    await db.execute("UPDATE tracker_settings SET max_users = 20 WHERE tracker_account_id = $1", tracker)
    await db.execute("UPDATE tracker_settings SET session_encrypted = 'other' WHERE tracker_account_id = $1", tracker)
    await wait_until(lambda: len(running.acquired(tracker)) == 3, what="restart on session change")
    assert not alive(second)
    assert len(running.acquired(tracker)) == 3

    # Unrunnable health states stop the worker; a flood wait that ends lets it run again.
    third = running.acquired(tracker)[2]
    await db.execute(
        "INSERT INTO tracker_health (tracker_account_id, state, state_until) "
        "VALUES ($1, 'flood_wait', now() + interval '1 second')",
        tracker,
    )
    await wait_until(lambda: not alive(third), what="stop on flood wait")
    await wait_until(lambda: len(running.acquired(tracker)) == 4, what="start after the flood wait ended")


@pytest.mark.parametrize("how", ["deactivate", "delete_account", "delete_setting", "flood_wait"])
async def test_a_tracker_that_stops_being_runnable_is_drained_and_stopped_after_the_drain_limit(
    running: Running, db: asyncpg.Connection[Any], how: str
) -> None:
    leaving = await make_tracker(db)
    stubborn = await make_tracker(db)
    (running.control / f"mode.{stubborn}").write_text("ignore_drain")
    await wait_until(lambda: running.state(leaving) == running.state(stubborn) == "running", what="both RUNNING")
    for tracker in (leaving, stubborn):
        if how == "deactivate":
            await db.execute("UPDATE tracker_accounts SET is_active = false WHERE id = $1", tracker)
        elif how == "delete_account":
            await db.execute("DELETE FROM tracker_accounts WHERE id = $1", tracker)
        elif how == "delete_setting":
            await db.execute("DELETE FROM tracker_settings WHERE tracker_account_id = $1", tracker)
        else:
            await db.execute(
                "INSERT INTO tracker_health (tracker_account_id, state, state_until) "
                "VALUES ($1, 'flood_wait', now() + interval '1 hour')",
                tracker,
            )
    await wait_until(lambda: events_of(running.control, "drained", leaving), what="the drained worker to exit")
    await wait_until(lambda: running.state(leaving) is None, what="the drained worker to be forgotten")
    assert not events_of(running.control, "stopped", leaving), "asked to drain, not to stop"
    # One that does not finish its drain is stopped (SIGTERM) once the drain limit passed.
    await wait_until(lambda: events_of(running.control, "stopped", stubborn), what="the drain limit to stop it")
    await wait_until(lambda: running.state(stubborn) is None, what="the stubborn worker to be forgotten")


async def test_a_draining_tracker_that_becomes_runnable_again_gets_a_fresh_worker(
    settings: Settings, tmp_path: Path, db: asyncpg.Connection[Any]
) -> None:
    options = msgspec.structs.replace(FAST, process=msgspec.structs.replace(FAST.process, drain_limit=600.0))
    settings = msgspec.structs.replace(settings, reconcile_interval=5.0, lease=LEASE)
    supervisor = Supervisor(
        settings, target=functools.partial(fake_worker.run, control_dir=str(tmp_path)), options=options
    )
    task = asyncio.create_task(supervisor.run())
    running = Running(supervisor, task, tmp_path)
    try:
        await asyncio.wait_for(supervisor.ready.wait(), 30)
        tracker = await make_tracker(db)
        (tmp_path / f"mode.{tracker}").write_text("ignore_drain")
        await wait_until(lambda: running.state(tracker) == "running", what="RUNNING")
        await db.execute("UPDATE tracker_accounts SET is_active = false WHERE id = $1", tracker)
        await wait_until(lambda: running.state(tracker) == "draining", what="DRAINING")
        await db.execute("UPDATE tracker_accounts SET is_active = true WHERE id = $1", tracker)
        # Far inside the drain limit: the drainer is stopped and a new worker takes the lock.
        await wait_until(lambda: len(running.acquired(tracker)) == 2, what="a fresh worker")
        assert events_of(running.control, "stopped", tracker), "the drainer was stopped (SIGTERM)"
        await wait_until(lambda: running.state(tracker) == "running", what="RUNNING again")
    finally:
        await running.stop()


async def test_a_tracker_hiding_its_last_seen_keeps_a_worker_that_can_fix_it(
    running: Running, db: asyncpg.Connection[Any]
) -> None:
    tracker = await make_tracker(db)
    await db.execute(
        "INSERT INTO tracker_health (tracker_account_id, state) VALUES ($1, 'privacy_misconfigured')", tracker
    )
    # It gets no targets (not usable), but its worker runs: only a worker can re-check and fix the rule.
    assert await db.fetchval("SELECT so_tracker_usable($1)", tracker) is False
    await wait_until(lambda: running.acquired(tracker), what="a worker for the misconfigured tracker")


async def test_crashing_worker_backs_off_then_goes_fatal_until_its_row_changes(
    running: Running, db: asyncpg.Connection[Any]
) -> None:
    tracker = await make_tracker(db)
    (running.control / f"mode.{tracker}").write_text("crash")

    async def health() -> Any:
        return await db.fetchrow("SELECT state, last_error FROM tracker_health WHERE tracker_account_id = $1", tracker)

    row = await wait_until(lambda: _fatal(health), what="FATAL in tracker_health")
    assert "exited 3 times" in row["last_error"]
    spawns = [e.at for e in events_of(running.control, "acquired", tracker)]
    assert len(spawns) == 3
    gaps = [b - a for a, b in itertools.pairwise(spawns)]
    assert gaps[1] > gaps[0], f"backoff did not grow: {gaps}"
    assert running.state(tracker) is None

    (running.control / f"mode.{tracker}").write_text("run")
    await db.execute(
        "UPDATE tracker_settings SET phone_number = phone_number || '9' WHERE tracker_account_id = $1", tracker
    )
    # tracker_settings' NOTIFY ignores phone changes: the timer reconcile finds it.
    await wait_until(lambda: running.state(tracker) == "running", timeout=30, what="restart after row change")
    assert (await health())["state"] != "fatal"


async def _fatal(health: Any) -> Any:
    row = await health()
    return row if row is not None and row["state"] == "fatal" else None


async def test_lock_held_elsewhere_is_not_a_crash_and_is_retried(running: Running, db: asyncpg.Connection[Any]) -> None:
    holder = await asyncpg.connect(running.supervisor.settings.asyncpg_dsn)
    try:
        tracker = await make_tracker(holder)
        await holder.execute("SELECT pg_advisory_lock($1, $2)", TRACKER_LOCK_SPACE, tracker)
        await wait_until(lambda: running.state(tracker) == "locked", what="LOCKED without forking")
        await asyncio.sleep(1.0)
        assert running.acquired(tracker) == []
        await holder.execute("SELECT pg_advisory_unlock($1, $2)", TRACKER_LOCK_SPACE, tracker)
        await wait_until(lambda: running.acquired(tracker), what="start once the lock is free")
    finally:
        await holder.close()

    # A worker that loses the race exits with EXIT_LOCK_HELD, again and again: never FATAL.
    other = await make_tracker(db)
    (running.control / f"mode.{other}").write_text("locked")
    await wait_until(lambda: len(events_of(running.control, "spawned", other)) >= 5, what="retries")
    assert running.state(other) in {"locked", "starting"}
    assert await db.fetchval("SELECT state FROM tracker_health WHERE tracker_account_id = $1", other) is None


async def test_a_fresh_heartbeat_from_elsewhere_delays_a_takeover_but_not_restarting_its_own_crashed_worker(
    running: Running, db: asyncpg.Connection[Any]
) -> None:
    delay = LEASE.takeover_delay
    async with db.transaction():  # one commit: the supervisor never sees the tracker without its heartbeat
        tracker = await make_tracker(db)
        # Another host's worker beat 2 s short of the delay ago: it may still be in its lease grace.
        beat = await db.fetchval(
            "INSERT INTO tracker_health (tracker_account_id, state, last_heartbeat_at)"
            " VALUES ($1, 'ok', now() - make_interval(secs => $2))"
            " RETURNING extract(epoch FROM last_heartbeat_at)::float8",
            tracker,
            delay - 2.0,
        )
    await wait_until(lambda: running.state(tracker) == "locked", what="waiting for the heartbeat to age")
    assert running.acquired(tracker) == []
    await wait_until(lambda: running.acquired(tracker), what="the takeover once the heartbeat is old enough")
    first = events_of(running.control, "acquired", tracker)[0]
    assert first.at >= beat + delay, "started while the other host's worker could still use the session"

    # Its own worker crashes while the heartbeat it wrote is fresh: restarted at once, not after the delay.
    await wait_until(lambda: running.state(tracker) == "running", what="RUNNING")
    beat = await db.fetchval(
        "UPDATE tracker_health SET last_heartbeat_at = now() WHERE tracker_account_id = $1"
        " RETURNING extract(epoch FROM last_heartbeat_at)::float8",
        tracker,
    )
    os.kill(first.pid, signal.SIGKILL)
    await wait_until(lambda: len(running.acquired(tracker)) == 2, what="restart after kill -9")
    second = events_of(running.control, "acquired", tracker)[1]
    assert second.at < beat + delay, "its own crashed worker waited for the takeover delay"


async def test_stop_terminates_gracefully_and_kills_stragglers(running: Running, db: asyncpg.Connection[Any]) -> None:
    polite = await make_tracker(db)
    stubborn = await make_tracker(db)
    (running.control / f"mode.{stubborn}").write_text("ignore_term")
    await wait_until(lambda: running.acquired(polite) and running.acquired(stubborn), what="both running")
    pids = [running.acquired(polite)[0], running.acquired(stubborn)[0]]
    await running.stop()
    assert events_of(running.control, "stopped", polite), "the polite worker got SIGTERM and exited cleanly"
    assert not events_of(running.control, "stopped", stubborn)
    await wait_until(lambda: not any(alive(pid) for pid in pids), what="no worker left")


async def test_kill_9_of_a_worker_restarts_it(running: Running, db: asyncpg.Connection[Any]) -> None:
    tracker = await make_tracker(db)
    await wait_until(lambda: running.state(tracker) == "running", what="RUNNING")
    pid = running.pid(tracker)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    await wait_until(lambda: len(running.acquired(tracker)) == 2, what="restart after kill -9")
    assert running.supervisor.processes[tracker].state in {State.STARTING, State.RUNNING}


async def test_retired_exits_back_off_without_going_fatal(running: Running, db: asyncpg.Connection[Any]) -> None:
    tracker = await make_tracker(db)
    (running.control / f"mode.{tracker}").write_text("retire")
    await wait_until(lambda: len(events_of(running.control, "spawned", tracker)) >= 5, what="retries")
    assert running.state(tracker) in {"backoff", "starting"}
    assert await db.fetchval("SELECT state FROM tracker_health WHERE tracker_account_id = $1", tracker) is None


async def test_supervisor_keeps_following_changes_across_a_postgres_restart(
    running: Running, db: asyncpg.Connection[Any], postgres_server: PostgresServer
) -> None:
    server = postgres_server.require_embedded()
    before = await make_tracker(db)
    await wait_until(lambda: running.state(before) == "running", what="RUNNING")
    # On the main thread: the server's parent-death signal is tied to the thread that starts it.
    server.restart()
    connection = await asyncpg.connect(running.supervisor.settings.asyncpg_dsn)
    try:
        after = await make_tracker(connection)
        await wait_until(lambda: running.acquired(after), what="a tracker created after the restart to start")
        await connection.execute("UPDATE tracker_accounts SET is_active = false WHERE id = $1", after)
        await wait_until(lambda: running.state(after) is None, what="a change after the restart to be followed")
    finally:
        await connection.close()


async def test_stop_is_not_held_up_by_a_reconcile_blocked_on_a_lock(
    running: Running, db: asyncpg.Connection[Any]
) -> None:
    tracker = await make_tracker(db)
    await wait_until(lambda: running.state(tracker) == "running", what="RUNNING")
    pid = running.pid(tracker)
    assert pid is not None
    blocker = await asyncpg.connect(running.supervisor.settings.asyncpg_dsn)
    try:
        async with blocker.transaction():
            await blocker.execute("LOCK TABLE tracker_settings IN ACCESS EXCLUSIVE MODE")
            await db.execute("SELECT pg_notify($1, '')", CHANNEL_TRACKERS)  # wakes a reconcile
            await wait_until(lambda: _blocked_on(db, "tracker_settings"), what="a reconcile waiting on the lock")
            running.supervisor.stop()
            await asyncio.wait_for(asyncio.shield(running.task), FAST.process.stop_grace + 5.0)
            assert not alive(pid)
            assert running.supervisor.processes == {}
    finally:
        await blocker.close()


async def _blocked_on(db: asyncpg.Connection[Any], table: str) -> bool:
    waiting = await db.fetchval("SELECT count(*) FROM pg_locks WHERE relation = $1::regclass AND NOT granted", table)
    return bool(waiting)

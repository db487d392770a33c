"""The worker as a real OS process: SIGTERM flushes, kill -9 loses nothing a resync can recover, one owner."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeAlias

import asyncpg
import msgspec
import pytest

from seeonline.sandbox import SandboxServer
from seeonline.settings import Settings
from seeonline.telegram.addresses import DC_ENV
from seeonline_supervisor.exit_codes import EXIT_LOCK_HELD, EXIT_OK
from seeonline_supervisor.worker.options import WorkerOptions
from tests.polling import wait_until
from tests.support.keys import SECRET_KEY
from tests.worker import builders
from tests.worker.conftest import FAST, TrackerFactory

Connection: TypeAlias = "asyncpg.Connection[Any]"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def spawn(settings: Settings, sandbox: SandboxServer) -> AsyncIterator[Callable[..., Any]]:
    """Start ``run_worker`` in a child process; every child is killed at the end of the test."""
    children: list[asyncio.subprocess.Process] = []

    async def start(tracker_id: int, options: WorkerOptions = FAST) -> asyncio.subprocess.Process:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "DATABASE_URL": settings.database_url or "",
            "SEEONLINE_SECRET_KEY": SECRET_KEY,
            "SEEONLINE_LOG_LEVEL": "info",
            DC_ENV: f"{sandbox.public_host}:{sandbox.port}",  # sandbox mode: its sessions may be dialled
        }
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.worker.child",
            str(tracker_id),
            msgspec.json.encode(options).decode(),
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
        )
        children.append(child)
        return child

    yield start
    for child in children:
        if child.returncode is None:
            child.kill()
            await child.wait()


def whole_seconds(timestamp: float) -> datetime:
    """A sandbox time as Telegram reports it."""
    return datetime.fromtimestamp(int(timestamp), tz=UTC)


async def _next_second() -> None:
    await asyncio.sleep(1.05 - time.time() % 1)


async def _rows(db: Connection, tracked_user_id: int, n: int) -> list[tuple[bool, datetime]] | None:
    rows = await builders.statuses(db, tracked_user_id)
    assert len(rows) <= n, rows
    return rows if len(rows) == n else None


async def test_sigterm_flushes_buffered_transitions_and_exits_zero(
    sandbox: SandboxServer, db: Connection, make_tracker: TrackerFactory, spawn: Callable[..., Any]
) -> None:
    tracker = await make_tracker()
    sandbox.world.add_person("flushed_person")
    row = await builders.subscribe(db, "flushed_person", tracker.tracker_id)
    # A linger far longer than the test: rows can only reach Postgres through the flush on SIGTERM.
    child = await spawn(tracker.tracker_id, msgspec.structs.replace(FAST, ingest_linger=600.0))
    await wait_until(lambda: _contact(sandbox, tracker.account.id, "flushed_person"))
    await _next_second()
    sandbox.world.set_status("flushed_person", online=True)
    await _next_second()
    person = sandbox.world.set_status("flushed_person", online=False)
    await asyncio.sleep(0.5)  # let the pushes reach the child
    assert await builders.statuses(db, row) == []
    child.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(child.wait(), 30) == EXIT_OK
    rows = await builders.statuses(db, row)
    assert [s for s, _ in rows] == [False, True, False]
    assert rows[2][1] == whole_seconds(person.was_online)
    assert await db.fetchval("SELECT state FROM tracker_health") == "stopped"


async def test_kill_9_then_restart_resyncs_without_losing_or_duplicating(
    sandbox: SandboxServer, db: Connection, make_tracker: TrackerFactory, spawn: Callable[..., Any]
) -> None:
    tracker = await make_tracker()
    sandbox.world.add_person("killed_watch")
    row = await builders.subscribe(db, "killed_watch", tracker.tracker_id)
    child = await spawn(tracker.tracker_id)
    await wait_until(lambda: _rows(db, row, 1))
    await _next_second()
    sandbox.world.set_status("killed_watch", online=True)
    await wait_until(lambda: _rows(db, row, 2))
    child.kill()
    await child.wait()
    await wait_until(lambda: _no_advisory_lock(db), what="the killed worker's lock to go")
    await _next_second()
    # Went offline while nobody watched: the next worker's getStatuses recovers the exact time.
    person = sandbox.world.set_status("killed_watch", online=False)
    second = await spawn(tracker.tracker_id)
    rows = await wait_until(lambda: _rows(db, row, 3))
    assert [s for s, _ in rows] == [False, True, False]
    assert rows[2][1] == whole_seconds(person.was_online)
    await asyncio.sleep(0.5)
    assert len(await builders.statuses(db, row)) == 3
    assert len(sandbox.calls_to("contacts.resolveUsername")) == 1
    second.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(second.wait(), 30) == EXIT_OK


async def test_kill_9_while_online_then_hidden_the_next_worker_closes_the_interval_at_expires(
    sandbox: SandboxServer, db: Connection, make_tracker: TrackerFactory, spawn: Callable[..., Any]
) -> None:
    tracker = await make_tracker()
    sandbox.world.add_person("expiring_watch")
    row = await builders.subscribe(db, "expiring_watch", tracker.tracker_id)
    child = await spawn(tracker.tracker_id)
    await wait_until(lambda: _rows(db, row, 1))
    await _next_second()
    person = sandbox.world.set_status("expiring_watch", online=True, expires_in=3.0)
    await wait_until(lambda: _rows(db, row, 2))

    async def expiry_kept() -> bool:
        return bool(
            await db.fetchval(
                "SELECT t.online_expires_at IS NOT NULL FROM targets t JOIN tracked_users u ON u.target_id = t.id"
                " WHERE u.id = $1",
                row,
            )
        )

    await wait_until(expiry_kept)
    child.kill()  # while online: its expiry timer dies with it
    await child.wait()
    await wait_until(lambda: _no_advisory_lock(db), what="the killed worker's lock to go")
    # Telegram sends no offline, and the target now hides its last seen: no resync can tell when it left.
    sandbox.world.set_privacy("expiring_watch", "nobody")
    await spawn(tracker.tracker_id)
    rows = await wait_until(lambda: _rows(db, row, 3), timeout=30)
    assert [s for s, _ in rows] == [False, True, False]
    assert person.online_until is not None
    assert rows[2][1] == whole_seconds(person.online_until)


async def test_only_one_process_runs_a_tracker(
    sandbox: SandboxServer, db: Connection, make_tracker: TrackerFactory, spawn: Callable[..., Any]
) -> None:
    tracker = await make_tracker()
    first = await spawn(tracker.tracker_id)
    await wait_until(lambda: _health_beat(db))
    second = await spawn(tracker.tracker_id)
    assert await asyncio.wait_for(second.wait(), 30) == EXIT_LOCK_HELD
    first.kill()
    await first.wait()
    # The lock dies with the process (once its backend has seen the connection close): a new worker
    # takes the tracker over.
    await wait_until(lambda: _no_advisory_lock(db), what="the killed worker's lock to go")
    third = await spawn(tracker.tracker_id)
    await wait_until(lambda: _lock_taken(db), what="the new worker to take the lock")
    assert third.returncode is None
    third.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(third.wait(), 30) == EXIT_OK


async def _contact(sandbox: SandboxServer, account_id: int, username: str) -> bool:
    return sandbox.world.user(username).id in sandbox.world.users[account_id].contacts


async def _advisory_locks(db: Connection) -> int:
    held = "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
    return int(await db.fetchval(f"{held} WHERE l.locktype = 'advisory' AND d.datname = current_database()"))


async def _no_advisory_lock(db: Connection) -> bool:
    return await _advisory_locks(db) == 0


async def _lock_taken(db: Connection) -> bool:
    return await _advisory_locks(db) > 0


async def _health_beat(db: Connection) -> bool:
    return bool(await db.fetchval("SELECT last_heartbeat_at IS NOT NULL FROM tracker_health"))

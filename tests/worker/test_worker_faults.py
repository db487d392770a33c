"""Worker faults in process: flood waits, revoked sessions, a lock held elsewhere, Postgres restarts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

import asyncpg
import pytest

from seeonline.channels import TRACKER_LOCK_SPACE
from seeonline.sandbox import SandboxServer
from supervisor.worker.options import EXIT_LOCK_HELD, EXIT_RETIRED
from tests.conftest import PostgresServer
from tests.worker import builders
from tests.worker.conftest import TrackerFactory, WorkerRunner, eventually

Connection: TypeAlias = "asyncpg.Connection[Any]"


async def _target_tracker(db: Connection, username: str) -> int | None:
    value: int | None = await db.fetchval("SELECT tracker_account_id FROM targets WHERE username = $1", username)
    return value


async def test_long_flood_wait_retires_the_tracker_and_moves_its_targets(
    sandbox: SandboxServer, db: Connection, make_tracker: TrackerFactory, run_worker_in_process: WorkerRunner
) -> None:
    flooded = await make_tracker()
    spare = await make_tracker()
    sandbox.world.add_person("flooded_target")
    await builders.subscribe(db, "flooded_target", flooded.tracker_id)
    sandbox.inject_fault("contacts.resolveUsername", "FLOOD_WAIT_3600", account=flooded.account)
    async with run_worker_in_process(flooded.tracker_id) as running:
        assert await running.exit_code() == EXIT_RETIRED
    health = await db.fetchrow(
        "SELECT state, state_until, last_error FROM tracker_health WHERE tracker_account_id = $1", flooded.tracker_id
    )
    assert health is not None
    assert health["state"] == "flood_wait"
    expected = datetime.now(UTC) + timedelta(seconds=3600)
    assert abs((health["state_until"] - expected).total_seconds()) < 60
    assert "FLOOD_WAIT_3600" in health["last_error"]
    assert await _target_tracker(db, "flooded_target") == spare.tracker_id
    counts = await db.fetch("SELECT current_users FROM tracker_settings ORDER BY tracker_account_id")
    assert [r["current_users"] for r in counts] == [0, 1]


async def test_short_flood_wait_is_slept_through(
    sandbox: SandboxServer, db: Connection, make_tracker: TrackerFactory, run_worker_in_process: WorkerRunner
) -> None:
    tracker = await make_tracker()
    sandbox.world.add_person("patient_target")
    row = await builders.subscribe(db, "patient_target", tracker.tracker_id)
    sandbox.inject_fault("contacts.resolveUsername", "FLOOD_WAIT_1", account=tracker.account, count=1)
    async with run_worker_in_process(tracker.tracker_id):
        await eventually(lambda: builders.statuses(db, row))
    assert await db.fetchval("SELECT state FROM tracker_health") == "stopped"
    assert len(sandbox.calls_to("contacts.resolveUsername")) == 2


async def test_revoked_session_marks_auth_lost_and_moves_targets(
    sandbox: SandboxServer, db: Connection, make_tracker: TrackerFactory, run_worker_in_process: WorkerRunner
) -> None:
    revoked = await make_tracker()
    spare = await make_tracker()
    sandbox.world.add_person("orphaned_target")
    row = await builders.subscribe(db, "orphaned_target", revoked.tracker_id)
    async with run_worker_in_process(revoked.tracker_id) as running:
        await eventually(lambda: builders.statuses(db, row))
        sandbox.revoke(revoked.account)
        assert await running.exit_code() == EXIT_RETIRED
    assert await db.fetchval("SELECT state FROM tracker_health WHERE tracker_account_id = $1", revoked.tracker_id) == (
        "auth_lost"
    )
    assert await db.fetchval("SELECT is_auth FROM tracker_accounts WHERE id = $1", revoked.tracker_id) is False
    assert await _target_tracker(db, "orphaned_target") == spare.tracker_id


async def test_second_worker_for_a_tracker_exits_with_lock_held(
    db: Connection, make_tracker: TrackerFactory, run_worker_in_process: WorkerRunner
) -> None:
    tracker = await make_tracker()
    assert await db.fetchval("SELECT pg_try_advisory_lock($1, $2)", TRACKER_LOCK_SPACE, tracker.tracker_id)
    async with run_worker_in_process(tracker.tracker_id) as running:
        assert await running.exit_code() == EXIT_LOCK_HELD


async def test_statuses_observed_while_postgres_restarts_are_written_afterwards(
    sandbox: SandboxServer,
    db: Connection,
    database_url: str,
    postgres_server: PostgresServer,
    make_tracker: TrackerFactory,
    run_worker_in_process: WorkerRunner,
) -> None:
    server = postgres_server.embedded
    if server is None:
        pytest.skip("needs the embedded Postgres (TEST_DATABASE_URL is set)")
    tracker = await make_tracker()
    sandbox.world.add_person("steady_target")
    row = await builders.subscribe(db, "steady_target", tracker.tracker_id)
    await db.close()
    check = await asyncpg.connect(database_url)
    async with run_worker_in_process(tracker.tracker_id) as running:
        await eventually(lambda: builders.statuses(check, row))
        await check.close()
        server.stop()
        flips = 0
        for online in (True, False, True, False, True):
            sandbox.world.set_status("steady_target", online=online)
            flips += 1
            await asyncio.sleep(1.05)  # distinct whole seconds, so every was_online is a new time
        assert running.worker.writer.pending > 0
        server.start()
        check = await asyncpg.connect(database_url)
        rows = await eventually(lambda: _rows_when(check, row, 1 + flips))
        assert [s for s, _ in rows] == [False, True, False, True, False, True]
        # The control connection came back and took the lock again: the worker is still the owner.
        await eventually(lambda: _true(running.worker.control.connected))
        assert not running.task.done()
    await check.close()


async def _rows_when(db: Connection, tracked_user_id: int, n: int) -> list[tuple[bool, datetime]] | None:
    rows = await builders.statuses(db, tracked_user_id)
    assert len(rows) <= n, rows
    return rows if len(rows) == n else None


async def _true(value: bool) -> bool:
    return value

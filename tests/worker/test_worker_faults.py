"""Worker faults in process: flood waits, revoked sessions, a lock held elsewhere, Postgres restarts."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

import asyncpg
import msgspec
import pytest

from seeonline.database.channels import TRACKER_LOCK_SPACE
from seeonline.database.maintenance import move_unresolved
from seeonline.lease import Lease
from seeonline.sandbox import SandboxServer
from seeonline_supervisor import trackers
from seeonline_supervisor.exit_codes import EXIT_LOCK_HELD, EXIT_RETIRED
from seeonline_supervisor.worker import link
from seeonline_supervisor.worker.tracker import TrackerWorker
from tests.polling import wait_until
from tests.support.keys import SECRET_KEY
from tests.support.postgres import PostgresServer
from tests.worker import builders
from tests.worker.conftest import FAST, FAST_LEASE, TrackerFactory, WorkerRunner

Connection: TypeAlias = "asyncpg.Connection[Any]"


async def _target_tracker(db: Connection, username: str) -> int | None:
    value: int | None = await db.fetchval("SELECT tracker_account_id FROM targets WHERE username = $1", username)
    return value


async def test_long_flood_wait_on_get_statuses_retires_the_tracker_and_moves_its_targets(
    sandbox: SandboxServer, db: Connection, make_tracker: TrackerFactory, run_worker_in_process: WorkerRunner
) -> None:
    flooded = await make_tracker()
    spare = await make_tracker()
    sandbox.world.add_person("flooded_target")
    await builders.subscribe(db, "flooded_target", flooded.tracker_id)
    # Tracking itself is blocked: the tracker cannot keep watching, so it retires.
    sandbox.inject_fault("contacts.getStatuses", "FLOOD_WAIT_3600", account=flooded.account)
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


async def _health(db: Connection, tracker_id: int) -> asyncpg.Record:
    row: asyncpg.Record | None = await db.fetchrow(
        "SELECT state, last_error, enrolment_paused_until FROM tracker_health WHERE tracker_account_id = $1", tracker_id
    )
    assert row is not None
    return row


async def _flip_is_recorded(sandbox: SandboxServer, db: Connection, username: str, row: int, online: bool) -> None:
    sandbox.world.set_status(username, online=online)
    await wait_until(lambda: _last_state_is(db, row, online), what=f"{username} recorded online={online}")


async def _last_state_is(db: Connection, row: int, online: bool) -> bool:
    rows = await builders.statuses(db, row)
    return bool(rows) and rows[-1][0] is online


@pytest.mark.parametrize(("wait", "moves"), [(3600, True), (300, False)], ids=["longer_than_setting", "shorter"])
async def test_long_flood_wait_on_resolve_pauses_enrolment_and_the_tracker_keeps_watching(
    wait: int,
    moves: bool,
    sandbox: SandboxServer,
    db: Connection,
    make_tracker: TrackerFactory,
    run_worker_in_process: WorkerRunner,
) -> None:
    flooded = await make_tracker()
    spare = await make_tracker()
    sandbox.world.add_person("watched_target")
    sandbox.world.add_person("newcomer_target")
    watched = await builders.subscribe(db, "watched_target", flooded.tracker_id)
    async with run_worker_in_process(flooded.tracker_id) as running:
        await wait_until(lambda: builders.statuses(db, watched))
        sandbox.inject_fault("contacts.resolveUsername", f"FLOOD_WAIT_{wait}", account=flooded.account)
        await builders.subscribe(db, "newcomer_target", flooded.tracker_id)

        async def paused() -> asyncpg.Record | None:
            health = await _health(db, flooded.tracker_id)
            return health if health["enrolment_paused_until"] is not None else None

        health = await wait_until(paused)
        expected = datetime.now(UTC) + timedelta(seconds=wait)
        assert abs((health["enrolment_paused_until"] - expected).total_seconds()) < 60
        assert health["state"] == "ok"
        assert f"FLOOD_WAIT_{wait}" in health["last_error"]
        # Targets it already watches keep flowing.
        await _flip_is_recorded(sandbox, db, "watched_target", watched, online=True)
        await _flip_is_recorded(sandbox, db, "watched_target", watched, online=False)
        assert not running.task.done()
        # The newcomer moves to a tracker that can resolve it only when the wait is longer than the setting.
        destination = spare.tracker_id if moves else flooded.tracker_id
        await wait_until(lambda: _is(_target_tracker(db, "newcomer_target"), destination))
        assert await _target_tracker(db, "watched_target") == flooded.tracker_id
        assert len(sandbox.calls_to("contacts.resolveUsername", flooded.account)) == 2  # never asked again
    counts = await db.fetch("SELECT current_users FROM tracker_settings ORDER BY tracker_account_id")
    assert [r["current_users"] for r in counts] == ([1, 1] if moves else [2, 0])


async def test_the_same_resolve_flood_wait_on_every_tracker_retires_none_and_moves_nothing(
    sandbox: SandboxServer, db: Connection, make_tracker: TrackerFactory, run_worker_in_process: WorkerRunner
) -> None:
    first, second = await make_tracker(), await make_tracker()
    for name in ("first_watched", "second_watched", "first_new", "second_new"):
        sandbox.world.add_person(name)
    first_watched = await builders.subscribe(db, "first_watched", first.tracker_id)
    second_watched = await builders.subscribe(db, "second_watched", second.tracker_id)
    async with run_worker_in_process(first.tracker_id) as one, run_worker_in_process(second.tracker_id) as two:
        await wait_until(lambda: builders.statuses(db, first_watched))
        await wait_until(lambda: builders.statuses(db, second_watched))
        sandbox.inject_fault("contacts.resolveUsername", "FLOOD_WAIT_3600")
        await builders.subscribe(db, "first_new", first.tracker_id)
        await builders.subscribe(db, "second_new", second.tracker_id)

        async def both_paused() -> bool:
            rows = [await _health(db, t.tracker_id) for t in (first, second)]
            return all(r["enrolment_paused_until"] is not None and r["state"] == "ok" for r in rows)

        await wait_until(both_paused)
        placed = [await _target_tracker(db, name) for name in ("first_new", "second_new")]
        # Nothing moves between paused trackers, however often the housekeeping looks.
        assert await move_unresolved(db, 600.0) == 0
        await asyncio.sleep(1.0)
        assert [await _target_tracker(db, name) for name in ("first_new", "second_new")] == placed
        assert await db.fetchval("SELECT count(*) FROM tracker_health WHERE state <> 'ok'") == 0
        await _flip_is_recorded(sandbox, db, "first_watched", first_watched, online=True)
        await _flip_is_recorded(sandbox, db, "second_watched", second_watched, online=True)
        assert not one.task.done() and not two.task.done()


async def test_a_restarted_worker_honours_the_persisted_enrolment_pause(
    sandbox: SandboxServer, db: Connection, make_tracker: TrackerFactory, run_worker_in_process: WorkerRunner
) -> None:
    tracker = await make_tracker()
    sandbox.world.add_person("patient_newcomer")
    sandbox.inject_fault("contacts.resolveUsername", "FLOOD_WAIT_300", account=tracker.account, count=1)
    await builders.subscribe(db, "patient_newcomer", tracker.tracker_id)
    async with run_worker_in_process(tracker.tracker_id):

        async def paused() -> bool:
            return (await _health(db, tracker.tracker_id))["enrolment_paused_until"] is not None

        await wait_until(paused)
    # The fault is used up: only the persisted pause keeps the next worker from resolving into the wait.
    async with run_worker_in_process(tracker.tracker_id) as running:
        await wait_until(lambda: _true(_resynced(running.worker)))
        await asyncio.sleep(0.5)
        assert len(sandbox.calls_to("contacts.resolveUsername", tracker.account)) == 1
        assert (await _health(db, tracker.tracker_id))["enrolment_paused_until"] is not None


async def test_contacts_of_targets_that_left_are_deleted_after_a_failed_attempt(
    sandbox: SandboxServer, db: Connection, make_tracker: TrackerFactory, run_worker_in_process: WorkerRunner
) -> None:
    tracker = await make_tracker()
    person = sandbox.world.add_person("leaving_target")
    row = await builders.subscribe(db, "leaving_target", tracker.tracker_id)
    sandbox.inject_fault("contacts.deleteContacts", "FROZEN_METHOD_INVALID", account=tracker.account, code=420, count=1)
    async with run_worker_in_process(tracker.tracker_id):
        await wait_until(lambda: builders.statuses(db, row))
        assert person.id in sandbox.world.users[tracker.account.id].contacts
        await db.execute("SELECT so_unsubscribe(ARRAY[$1]::bigint[])", row)
        await wait_until(lambda: _true(person.id not in sandbox.world.users[tracker.account.id].contacts))
    assert [c.error for c in sandbox.calls_to("contacts.deleteContacts", tracker.account)] == [
        "FROZEN_METHOD_INVALID",
        None,
    ]


async def _is(value: Any, expected: object) -> bool:
    return bool(await value == expected)


async def test_short_flood_wait_is_slept_through(
    sandbox: SandboxServer, db: Connection, make_tracker: TrackerFactory, run_worker_in_process: WorkerRunner
) -> None:
    tracker = await make_tracker()
    sandbox.world.add_person("patient_target")
    row = await builders.subscribe(db, "patient_target", tracker.tracker_id)
    sandbox.inject_fault("contacts.resolveUsername", "FLOOD_WAIT_1", account=tracker.account, count=1)
    async with run_worker_in_process(tracker.tracker_id):
        await wait_until(lambda: builders.statuses(db, row))
    assert await db.fetchval("SELECT state FROM tracker_health") == "stopped"
    assert len(sandbox.calls_to("contacts.resolveUsername")) == 2


async def test_a_connection_dropped_as_soon_as_it_is_used_is_retried_at_a_growing_pace_not_in_a_tight_loop(
    sandbox: SandboxServer, db: Connection, make_tracker: TrackerFactory, run_worker_in_process: WorkerRunner
) -> None:
    # A middlebox that accepts the connection and closes it on the first packet: every reconnect "succeeds".
    tracker = await make_tracker()
    sandbox.world.add_person("flapping_target")
    row = await builders.subscribe(db, "flapping_target", tracker.tracker_id)
    async with run_worker_in_process(tracker.tracker_id):
        await _flip_is_recorded(sandbox, db, "flapping_target", row, True)
        fault = sandbox.inject_fault("*", drop=True, account=tracker.account)
        began = time.time()  # the sandbox's clock for calls
        sandbox.drop_connections(tracker.account)  # the reconnect's resync is the first call dropped
        await asyncio.sleep(4.0)
        connections = {c.connection for c in sandbox.calls if c.account_id == tracker.account.id and c.time >= began}
        # Pauses grow to reconnect_max (0.5 s here): about 10 in 4 s; unpaced, Telethon reconnects hundreds of times.
        assert 2 <= len(connections) <= 20, len(connections)
        sandbox.clear_faults(fault.id)
        await _flip_is_recorded(sandbox, db, "flapping_target", row, False)  # and it recovers once the link holds


async def test_a_connect_that_timed_out_is_started_afresh_so_pushed_changes_still_arrive(
    sandbox: SandboxServer,
    db: Connection,
    make_tracker: TrackerFactory,
    run_worker_in_process: WorkerRunner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(link, "TELEGRAM_CONNECT_TIMEOUT", 1.0)
    tracker = await make_tracker()
    sandbox.world.add_person("slow_start_target")
    row = await builders.subscribe(db, "slow_start_target", tracker.tracker_id)
    # The first connect's opening request is answered too late: connect() times out after the socket was made.
    sandbox.inject_fault("help.getConfig", delay=3.0, count=1)
    async with run_worker_in_process(tracker.tracker_id):
        await wait_until(lambda: builders.statuses(db, row), what="the first row (a resync)")
        sandbox.world.set_status("slow_start_target", online=True)
        # A push, well before the next timed resync (30 s): a half-started client would never read it.
        await wait_until(lambda: _last_state_is(db, row, True), timeout=10, what="the pushed change")


async def test_revoked_session_marks_auth_lost_and_moves_targets(
    sandbox: SandboxServer, db: Connection, make_tracker: TrackerFactory, run_worker_in_process: WorkerRunner
) -> None:
    revoked = await make_tracker()
    spare = await make_tracker()
    sandbox.world.add_person("orphaned_target")
    row = await builders.subscribe(db, "orphaned_target", revoked.tracker_id)
    async with run_worker_in_process(revoked.tracker_id) as running:
        await wait_until(lambda: builders.statuses(db, row))
        sandbox.revoke(revoked.account)
        assert await running.exit_code() == EXIT_RETIRED
    assert await db.fetchval("SELECT state FROM tracker_health WHERE tracker_account_id = $1", revoked.tracker_id) == (
        "auth_lost"
    )
    assert await db.fetchval("SELECT is_auth FROM tracker_accounts WHERE id = $1", revoked.tracker_id) is False
    assert await _target_tracker(db, "orphaned_target") == spare.tracker_id


async def test_an_unexpected_telegram_error_for_one_target_does_not_stop_the_others(
    sandbox: SandboxServer, db: Connection, make_tracker: TrackerFactory, run_worker_in_process: WorkerRunner
) -> None:
    tracker = await make_tracker()
    sandbox.world.add_person("frozen_target")
    sandbox.world.add_person("fine_target")
    frozen_row = await builders.subscribe(db, "frozen_target", tracker.tracker_id)
    fine_row = await builders.subscribe(db, "fine_target", tracker.tracker_id)
    frozen_id = await db.fetchval("SELECT id FROM targets WHERE username = 'frozen_target'")
    # Targets are enrolled in id order: the first contacts.addContact is the frozen target's.
    sandbox.inject_fault("contacts.addContact", "FROZEN_METHOD_INVALID", account=tracker.account, code=420, count=1)
    async with run_worker_in_process(tracker.tracker_id) as running:
        await wait_until(lambda: builders.statuses(db, fine_row))

        async def error_recorded() -> bool:
            error = await db.fetchval(
                "SELECT last_error FROM tracker_health WHERE tracker_account_id = $1", tracker.tracker_id
            )
            return bool(error and "FROZEN_METHOD_INVALID" in error and f"target {frozen_id}" in error)

        await wait_until(error_recorded)
        # Retried later, with backoff: the frozen target is enrolled too, and the worker never stopped.
        await wait_until(lambda: builders.statuses(db, frozen_row))
        assert not running.task.done()
        assert [c.error for c in sandbox.calls_to("contacts.addContact", tracker.account)] == [
            "FROZEN_METHOD_INVALID",
            None,
            None,
        ]


async def test_second_worker_for_a_tracker_exits_with_lock_held(
    db: Connection, make_tracker: TrackerFactory, run_worker_in_process: WorkerRunner
) -> None:
    tracker = await make_tracker()
    assert await db.fetchval("SELECT pg_try_advisory_lock($1, $2)", TRACKER_LOCK_SPACE, tracker.tracker_id)
    async with run_worker_in_process(tracker.tracker_id) as running:
        assert await running.exit_code() == EXIT_LOCK_HELD


@pytest.mark.parametrize("outage", [0.0, 30.0, 60.0], ids=["restart", "down_30s", "down_60s"])
async def test_status_flips_during_a_postgres_outage_are_all_written_exactly_once(
    outage: float,
    sandbox: SandboxServer,
    db: Connection,
    database_url: str,
    postgres_server: PostgresServer,
    make_tracker: TrackerFactory,
    run_worker_in_process: WorkerRunner,
) -> None:
    server = postgres_server.require_embedded()
    tracker = await make_tracker()
    account_id = tracker.account.id
    sandbox.world.add_person("restart_target")
    row = await builders.subscribe(db, "restart_target", tracker.tracker_id)
    target_id = await db.fetchval("SELECT id FROM targets WHERE username = 'restart_target'")
    await db.close()
    check = await asyncpg.connect(database_url)
    # The production lease (a managed Postgres failover takes 30-60 s): the lock comes back within its grace.
    async with (
        run_worker_in_process(tracker.tracker_id, lease=Lease()) as running,
        _session_overlaps(sandbox, account_id) as overlaps,
    ):
        worker = running.worker
        assert [s for s, _ in await wait_until(lambda: builders.statuses(check, row))] == [False]
        await wait_until(lambda: _true(_resynced(worker)))
        await check.close()
        session = _live_connections(sandbox, account_id)
        assert len(session) == 1
        flips = [True, False] * max(3, int(outage // 6))
        down_at = time.monotonic()
        server.stop()
        await wait_until(lambda: _true(not worker.control.connected))
        for online in flips:
            sandbox.world.set_status("restart_target", online=online)
            # Observed while Postgres is down (Telegram is still connected): buffered, not written.
            await wait_until(functools.partial(_observed, worker, target_id, online))
            await asyncio.sleep(outage / len(flips))
        await asyncio.sleep(max(down_at + outage - time.monotonic(), 0.0))
        assert _live_connections(sandbox, account_id) == session
        server.start()
        check = await asyncpg.connect(database_url)
        rows = await wait_until(lambda: _rows_when(check, row, 1 + len(flips)), timeout=30)
        assert [s for s, _ in rows] == [False, *flips]
        await wait_until(lambda: _true(running.worker.control.connected))
        # Seamless: the same Telegram connection all along, and the worker carried on.
        assert _live_connections(sandbox, account_id) == session
        assert not running.task.done()
        sandbox.world.set_status("restart_target", online=True)
        rows = await wait_until(lambda: _rows_when(check, row, 2 + len(flips)))
        assert [s for s, _ in rows] == [False, *flips, True]
    assert overlaps == []
    await check.close()


async def test_while_postgres_is_down_the_worker_lets_go_of_telegram_and_resyncs_when_back(
    sandbox: SandboxServer,
    db: Connection,
    database_url: str,
    postgres_server: PostgresServer,
    make_tracker: TrackerFactory,
    run_worker_in_process: WorkerRunner,
) -> None:
    server = postgres_server.require_embedded()
    tracker = await make_tracker()
    sandbox.world.add_person("steady_target")
    row = await builders.subscribe(db, "steady_target", tracker.tracker_id)
    await db.close()
    check = await asyncpg.connect(database_url)
    async with run_worker_in_process(tracker.tracker_id) as running:
        await wait_until(lambda: builders.statuses(check, row))
        await check.close()
        server.stop()
        # Once its grace is over, without its lock the worker may not use the session: another host could own it.
        await wait_until(lambda: _true(not _live_connections(sandbox, tracker.account.id)))
        sandbox.world.set_status("steady_target", online=True)  # pushed to nobody
        server.start()
        check = await asyncpg.connect(database_url)
        # The lock is taken again, Telegram reconnects, and the resync recovers the missed change.
        rows = await wait_until(lambda: _rows_when(check, row, 2))
        assert [s for s, _ in rows] == [False, True]
        await wait_until(lambda: _true(running.worker.control.connected))
        assert len(_live_connections(sandbox, tracker.account.id)) == 1
        assert not running.task.done()
    await check.close()


async def test_after_a_lock_loss_longer_than_the_grace_a_successor_never_shares_the_session(
    sandbox: SandboxServer,
    db: Connection,
    database_url: str,
    postgres_server: PostgresServer,
    make_tracker: TrackerFactory,
    run_worker_in_process: WorkerRunner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = postgres_server.require_embedded()
    tracker = await make_tracker()
    account_id = tracker.account.id
    sandbox.world.add_person("leased_target")
    await builders.subscribe(db, "leased_target", tracker.tracker_id)
    await db.close()
    # The supervisor's rule, for the workers' timings.
    takeover_delay = FAST_LEASE.takeover_delay
    async with run_worker_in_process(tracker.tracker_id) as first:
        await wait_until(lambda: _true(_resynced(first.worker)))
        assert len(_live_connections(sandbox, account_id)) == 1
        # A partition: the first worker cannot reach Postgres again until its successor runs the tracker.
        taken_over = asyncio.Event()
        reconnect = first.worker.control.connect

        async def partitioned(**kwargs: float) -> None:
            if not taken_over.is_set():
                raise ConnectionRefusedError("partitioned (test)")
            await reconnect(**kwargs)

        monkeypatch.setattr(first.worker.control, "connect", partitioned)
        server.restart()  # the first worker's lock is gone with its connection
        check = await asyncpg.connect(database_url)
        async with _session_overlaps(sandbox, account_id) as overlaps:

            async def may_take_over() -> bool:
                rows = await trackers.runnable_trackers(check, takeover_delay)
                mine = next(r for r in rows if r.id == tracker.tracker_id)
                return not mine.locked and mine.heartbeat_fresh_for == 0

            await wait_until(may_take_over)
            # By then the first worker's grace is over: it has let go of the session.
            assert _live_connections(sandbox, account_id) == []
            async with run_worker_in_process(tracker.tracker_id) as second:
                await wait_until(lambda: _true(_resynced(second.worker)))
                taken_over.set()
                assert await first.exit_code() == EXIT_LOCK_HELD
                assert not second.task.done()
                assert len(_live_connections(sandbox, account_id)) == 1
        await check.close()
    assert overlaps == []


async def test_a_silently_unresponsive_lock_connection_ends_the_lease(
    sandbox: SandboxServer, db: Connection, make_tracker: TrackerFactory, run_worker_in_process: WorkerRunner
) -> None:
    tracker = await make_tracker()
    account_id = tracker.account.id
    async with run_worker_in_process(tracker.tracker_id) as running:
        await wait_until(lambda: _true(_resynced(running.worker)))
        holder = await db.fetchval(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND objid = $2 AND granted",
            TRACKER_LOCK_SPACE,
            tracker.tracker_id,
        )
        assert holder is not None
        # The backend holding the lock stops answering but its socket stays open, as in a network partition.
        os.kill(holder, signal.SIGSTOP)
        try:
            await wait_until(lambda: _true(not _live_connections(sandbox, account_id)))
            # Its lock is still held (by the frozen backend): the worker may not come back.
            assert await running.exit_code() == EXIT_LOCK_HELD
        finally:
            os.kill(holder, signal.SIGCONT)


@contextlib.asynccontextmanager
async def _session_overlaps(sandbox: SandboxServer, account_id: int) -> AsyncIterator[list[list[int]]]:
    """Every moment (sampled every 20 ms) at which the account had more than one live connection."""
    overlaps: list[list[int]] = []

    async def watch() -> None:
        while True:
            live = _live_connections(sandbox, account_id)
            if len(live) > 1:
                overlaps.append(live)
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch())
    try:
        yield overlaps
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


def _live_connections(sandbox: SandboxServer, account_id: int) -> list[int]:
    return [c.id for c in list(sandbox.connections) if not c.closed and c.account_id == account_id]


async def _observed(worker: TrackerWorker, target_id: int, online: bool) -> bool:
    return worker.book.targets[target_id].last_online is online


def _resynced(worker: TrackerWorker) -> bool:
    return worker.telegram is not None and worker.telegram.resyncs > 0


async def _rows_when(db: Connection, tracked_user_id: int, n: int) -> list[tuple[bool, datetime]] | None:
    rows = await builders.statuses(db, tracked_user_id)
    assert len(rows) <= n, rows
    return rows if len(rows) == n else None


async def _true(value: bool) -> bool:
    return value


@pytest.mark.parametrize("cause", ["down", "too_many_connections"])
async def test_a_worker_that_cannot_get_a_postgres_connection_at_start_retires_instead_of_crashing(
    cause: str, db: Connection, database_url: str, make_tracker: TrackerFactory
) -> None:
    tracker = await make_tracker()
    if cause == "down":
        url = "postgresql://postgres@127.0.0.1:1/nowhere"
    else:  # SQLSTATE 53300, as when the server's max_connections is used up
        await db.execute("CREATE ROLE so_crowded LOGIN CONNECTION LIMIT 0")
        url = database_url.replace("postgres@", "so_crowded@", 1)
        assert "so_crowded@" in url
    env = {**os.environ, "DATABASE_URL": url, "SEEONLINE_SECRET_KEY": SECRET_KEY}
    command = [sys.executable, "-m", "seeonline", "worker", str(tracker.tracker_id)]
    result = await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, timeout=60, check=False)
    # A crash counts towards FATAL; an outage or a full server must not make the tracker fatal.
    assert result.returncode == EXIT_RETIRED, result.stderr.decode()[-2000:]
    if cause != "down":
        await db.execute("DROP ROLE so_crowded")


async def test_a_drain_of_100_flipping_targets_loses_no_flip_while_the_new_tracker_enrols_them(
    sandbox: SandboxServer, db: Connection, make_tracker: TrackerFactory, run_worker_in_process: WorkerRunner
) -> None:
    old, new = await make_tracker(max_users=100), await make_tracker(max_users=100)
    names = [f"drained_{i:03d}" for i in range(100)]
    rows = {}
    for name in names:
        sandbox.world.add_person(name)
        rows[name] = await builders.subscribe(db, name, old.tracker_id)
    # The new tracker resolves slowly (as Telegram makes it), so enrolling all 100 takes about 10 s.
    slow = msgspec.structs.replace(FAST, resolve_interval=0.1)
    async with run_worker_in_process(old.tracker_id), run_worker_in_process(new.tracker_id, slow):

        async def all_recorded(count: int) -> bool:
            counts = await db.fetch(
                "SELECT count(*) AS n FROM online_statuses WHERE tracked_user_id = ANY($1::bigint[])"
                " GROUP BY tracked_user_id",
                list(rows.values()),
            )
            return len(counts) == len(rows) and all(r["n"] >= count for r in counts)

        await wait_until(lambda: all_recorded(1), timeout=60)
        async with db.transaction():  # what PATCH max_users=0 does: the old tracker's targets move
            await db.execute("SELECT so_begin_rebalance()")
            await db.execute("UPDATE tracker_settings SET max_users = 0 WHERE tracker_account_id = $1", old.tracker_id)
            assert await db.fetchval("SELECT so_rebalance_tracker($1)", old.tracker_id) == 100
        flips = [True, False, True, False]
        for online in flips:  # while the new tracker is still enrolling them
            for name in names:
                sandbox.world.set_status(name, online=online, expires_in=600.0)
            await asyncio.sleep(1.5)
        await wait_until(lambda: all_recorded(1 + len(flips)), timeout=60)
        for name, row in rows.items():
            assert [s for s, _ in await builders.statuses(db, row)] == [False, *flips], name
        # Once the new tracker has them all, the old one lets go of its contacts.
        enrolled = "SELECT count(*) FROM targets WHERE tracker_account_id = $1 AND enrolled_at IS NOT NULL"
        await wait_until(lambda: _is(db.fetchval(enrolled, new.tracker_id), 100), timeout=60)
        await wait_until(lambda: _true(not sandbox.world.users[old.account.id].contacts), timeout=30)

"""A running worker's health tells the truth: cut off from Telegram, failing writes, a stuck resync."""

from __future__ import annotations

import asyncio
from typing import Any, TypeAlias

import asyncpg
import msgspec
import pytest

from seeonline.sandbox import SandboxServer
from seeonline_supervisor.worker.options import WorkerOptions
from tests.polling import wait_until
from tests.worker import builders
from tests.worker.conftest import FAST, TrackerFactory, WorkerRunner

Connection: TypeAlias = "asyncpg.Connection[Any]"


async def _health_is(db: Connection, tracker_id: int, state: str, error_part: str | None = None) -> bool:
    row = await db.fetchrow("SELECT state, last_error FROM tracker_health WHERE tracker_account_id = $1", tracker_id)
    if row is None or row["state"] != state:
        return False
    return error_part is None or error_part in (row["last_error"] or "")


async def test_health_shows_telegram_unreachable_and_recovers_without_losing_later_flips(
    sandbox: SandboxServer, db: Connection, make_tracker: TrackerFactory, run_worker_in_process: WorkerRunner
) -> None:
    tracker = await make_tracker()
    sandbox.world.add_person("outage_target")
    row = await builders.subscribe(db, "outage_target", tracker.tracker_id)
    async with run_worker_in_process(tracker.tracker_id) as running:
        await wait_until(lambda: builders.statuses(db, row))
        await wait_until(lambda: _health_is(db, tracker.tracker_id, "ok"))
        await sandbox.go_offline()
        await wait_until(lambda: _health_is(db, tracker.tracker_id, "connecting"))
        await wait_until(lambda: _health_is(db, tracker.tracker_id, "telegram_unreachable", "Telegram"))
        await sandbox.go_online()
        await wait_until(lambda: _health_is(db, tracker.tracker_id, "ok"))
        sandbox.world.set_status("outage_target", online=True)
        rows = await wait_until(lambda: _rows_when(db, row, 2))
        assert [online for online, _ in rows] == [False, True]
        assert not running.task.done()


async def test_health_shows_failing_status_writes_and_the_buffered_flip_is_written_after(
    sandbox: SandboxServer, db: Connection, make_tracker: TrackerFactory, run_worker_in_process: WorkerRunner
) -> None:
    tracker = await make_tracker()
    sandbox.world.add_person("buffered_target")
    row = await builders.subscribe(db, "buffered_target", tracker.tracker_id)
    async with run_worker_in_process(tracker.tracker_id) as running:
        await wait_until(lambda: builders.statuses(db, row))
        # Writes of status rows fail (the tracker's lock connection stays fine, so heartbeats go on).
        await db.execute(
            "CREATE FUNCTION refuse_statuses() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'status writes refused (test)'; END $$;"
            " CREATE TRIGGER refuse_statuses BEFORE INSERT ON online_statuses"
            " FOR EACH STATEMENT EXECUTE FUNCTION refuse_statuses()"
        )
        sandbox.world.set_status("buffered_target", online=True)
        await wait_until(lambda: _health_is(db, tracker.tracker_id, "writer_failing", "status writes refused"))
        await db.execute("DROP TRIGGER refuse_statuses ON online_statuses")
        rows = await wait_until(lambda: _rows_when(db, row, 2))
        assert [online for online, _ in rows] == [False, True]
        await wait_until(lambda: _health_is(db, tracker.tracker_id, "ok"))
        assert not running.task.done()


async def test_a_resync_telegram_never_answers_times_out_shows_as_stuck_and_recovers(
    sandbox: SandboxServer, db: Connection, make_tracker: TrackerFactory, run_worker_in_process: WorkerRunner
) -> None:
    tracker = await make_tracker()
    sandbox.world.add_person("quiet_target")
    row = await builders.subscribe(db, "quiet_target", tracker.tracker_id)
    async with run_worker_in_process(tracker.tracker_id) as running:
        await wait_until(lambda: builders.statuses(db, row))
        fault = sandbox.inject_fault("contacts.getStatuses", delay=600.0, account=tracker.account)
        sandbox.drop_connections(tracker.account)  # the reconnect asks for a resync, which never returns
        await wait_until(lambda: _health_is(db, tracker.tracker_id, "resync_stuck"))
        sandbox.clear_faults(fault.id)
        await wait_until(lambda: _health_is(db, tracker.tracker_id, "ok"))
        sandbox.world.set_status("quiet_target", online=True)
        await wait_until(lambda: _rows_when(db, row, 2))
        assert not running.task.done()


async def _rows_when(db: Connection, tracked_user_id: int, n: int) -> list[tuple[bool, Any]] | None:
    rows = await builders.statuses(db, tracked_user_id)
    return rows if len(rows) >= n else None


async def test_a_session_wholly_inside_a_telegram_outage_is_recorded_as_inexact(
    sandbox: SandboxServer, db: Connection, make_tracker: TrackerFactory, run_worker_in_process: WorkerRunner
) -> None:
    tracker = await make_tracker()
    sandbox.world.add_person("blind_target")
    row = await builders.subscribe(db, "blind_target", tracker.tracker_id)
    async with run_worker_in_process(tracker.tracker_id):
        await wait_until(lambda: builders.statuses(db, row))
        await sandbox.go_offline()
        await asyncio.sleep(1.1)
        sandbox.world.set_status("blind_target", online=True)  # nobody hears it
        await asyncio.sleep(1.1)
        person = sandbox.world.set_status("blind_target", online=False)
        await sandbox.go_online()
        rows = await wait_until(lambda: _rows_when(db, row, 3))
    sources = await db.fetch(
        "SELECT is_online, source, created_at FROM online_statuses WHERE tracked_user_id = $1 ORDER BY created_at, id",
        row,
    )
    # Seen only through the resync's was_online: the session is there, its start flagged inexact.
    assert [(r["is_online"], r["source"]) for r in sources] == [
        (False, "was_online"),
        (True, "resync"),
        (False, "was_online"),
    ]
    assert person.was_online is not None
    assert int(rows[2][1].timestamp()) == int(person.was_online)


TELEGRAM_OUTAGE = 120.0  # what the issue asks for; the worker's health and reconnect timings are production's


@pytest.mark.slow
async def test_a_two_minute_telegram_outage_shows_unreachable_records_the_blind_session_and_later_flips(
    sandbox: SandboxServer, db: Connection, make_tracker: TrackerFactory, run_worker_in_process: WorkerRunner
) -> None:
    defaults = WorkerOptions()
    options = msgspec.structs.replace(
        FAST, unreachable_after=defaults.unreachable_after, reconnect_max=defaults.reconnect_max
    )
    tracker = await make_tracker()
    sandbox.world.add_person("blind_for_minutes")
    sandbox.world.add_person("flips_after_minutes")
    blind = await builders.subscribe(db, "blind_for_minutes", tracker.tracker_id)
    later = await builders.subscribe(db, "flips_after_minutes", tracker.tracker_id)
    async with run_worker_in_process(tracker.tracker_id, options) as running:
        await wait_until(lambda: _rows_when(db, blind, 1), timeout=30)
        await wait_until(lambda: _rows_when(db, later, 1), timeout=30)
        await wait_until(lambda: _health_is(db, tracker.tracker_id, "ok"), timeout=30)
        began = asyncio.get_running_loop().time()
        await sandbox.go_offline()
        await wait_until(lambda: _health_is(db, tracker.tracker_id, "connecting"), timeout=30)
        sandbox.world.set_status("blind_for_minutes", online=True)  # a session nobody hears
        await asyncio.sleep(5.0)
        session = sandbox.world.set_status("blind_for_minutes", online=False)
        await wait_until(
            lambda: _health_is(db, tracker.tracker_id, "telegram_unreachable", "Telegram"),
            timeout=defaults.unreachable_after + 60,
            what="telegram_unreachable",
        )
        await asyncio.sleep(max(TELEGRAM_OUTAGE - (asyncio.get_running_loop().time() - began), 0.0))
        await sandbox.go_online()
        await wait_until(lambda: _health_is(db, tracker.tracker_id, "ok"), timeout=60, what="ok again")
        rows = await wait_until(lambda: _rows_when(db, blind, 3), timeout=30, what="the blind session")
        sandbox.world.set_status("flips_after_minutes", online=True)
        await wait_until(lambda: _rows_when(db, later, 2), timeout=30, what="a flip after the outage")
        sandbox.world.set_status("flips_after_minutes", online=False)
        after = await wait_until(lambda: _rows_when(db, later, 3), timeout=30, what="the next flip")
        assert not running.task.done()
    sources = await db.fetch(
        "SELECT is_online, source FROM online_statuses WHERE tracked_user_id = $1 ORDER BY created_at, id", blind
    )
    # Offline before the outage and after it, last seen during it: the session, its start flagged inexact.
    assert [(r["is_online"], r["source"]) for r in sources] == [
        (False, "was_online"),
        (True, "resync"),
        (False, "was_online"),
    ]
    assert session.was_online is not None
    assert int(rows[2][1].timestamp()) == int(session.was_online)
    assert [online for online, _ in after] == [False, True, False]

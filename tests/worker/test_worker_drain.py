"""A draining worker (its tracker left): it watches what it hands over, enrols nothing, and exits when done."""

from __future__ import annotations

from typing import Any, TypeAlias

import asyncpg
import msgspec

from seeonline.sandbox import SandboxServer
from seeonline_supervisor.exit_codes import EXIT_OK
from tests.polling import wait_until
from tests.worker import builders
from tests.worker.conftest import FAST, TrackerFactory, WorkerRunner

Connection: TypeAlias = "asyncpg.Connection[Any]"


async def _deactivate(db: Connection, tracker_id: int) -> None:
    """What PATCH is_active=false does: the tracker's targets move (here: to waiting, nobody has room)."""
    async with db.transaction():
        await db.execute("SELECT so_begin_rebalance()")
        await db.execute("UPDATE tracker_accounts SET is_active = false WHERE id = $1", tracker_id)
        await db.execute("SELECT so_rebalance_tracker($1)", tracker_id)


async def _rows(db: Connection, tracked_user_id: int, n: int) -> list[bool] | None:
    rows = [online for online, _ in await builders.statuses(db, tracked_user_id)]
    return rows if len(rows) >= n else None


async def test_a_drain_watches_targets_left_waiting_until_the_handover_limit(
    sandbox: SandboxServer, db: Connection, make_tracker: TrackerFactory, run_worker_in_process: WorkerRunner
) -> None:
    tracker = await make_tracker()
    sandbox.world.add_person("waits_after_drain")
    row = await builders.subscribe(db, "waits_after_drain", tracker.tracker_id)
    enrolled = "SELECT enrolled_at IS NOT NULL FROM targets WHERE username = 'waits_after_drain'"
    async with run_worker_in_process(tracker.tracker_id, msgspec.structs.replace(FAST, handover_max=6.0)) as running:
        await wait_until(lambda: db.fetchval(enrolled), what="the target enrolled")
        await _deactivate(db, tracker.tracker_id)
        running.worker.request_drain()  # what the supervisor's DRAIN_SIGNAL does
        # Nobody else watches a waiting target: the drainer still records it.
        sandbox.world.set_status("waits_after_drain", online=True)
        await wait_until(lambda: _rows(db, row, 2), what="the flip during the drain")
        sandbox.world.set_status("waits_after_drain", online=False)
        await wait_until(lambda: _rows(db, row, 3), what="the next flip during the drain")
        assert await running.exit_code(within=60) == EXIT_OK  # the handover's time limit ended the drain
    assert await db.fetchval("SELECT tracker_account_id FROM targets WHERE username = 'waits_after_drain'") is None
    assert await _rows(db, row, 3) == [False, True, False]


async def test_a_drain_with_nothing_to_hand_over_ends_at_once(
    sandbox: SandboxServer, db: Connection, make_tracker: TrackerFactory, run_worker_in_process: WorkerRunner
) -> None:
    tracker = await make_tracker()
    async with run_worker_in_process(tracker.tracker_id, msgspec.structs.replace(FAST, handover_max=600.0)) as running:
        await wait_until(lambda: running.worker.link is not None and running.worker.link.lost_at is None)
        await _deactivate(db, tracker.tracker_id)
        running.worker.request_drain()
        assert await running.exit_code() == EXIT_OK
    assert await db.fetchval("SELECT state FROM tracker_health WHERE tracker_account_id = $1", tracker.tracker_id) == (
        "stopped"
    )

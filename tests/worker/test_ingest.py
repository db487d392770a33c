"""Status ingestion against real Postgres: fan-out, change detection, idempotent retries, outages, NOTIFY."""

from __future__ import annotations

import asyncio
import time
from typing import Any, TypeAlias

import asyncpg

from seeonline.database.channels import CHANNEL_STATUSES
from seeonline_supervisor.worker.ingest import StatusWriter, Transition, write_batch
from tests.support.postgres import PostgresServer
from tests.worker.builders import at, bare_target, statuses

Connection: TypeAlias = "asyncpg.Connection[Any]"


async def test_changes_fan_out_to_every_subscriber_and_repeats_are_dropped(db: Connection) -> None:
    shared, (first, second) = await bare_target(db, "shared_target", subscribers=2)
    single, (only,) = await bare_target(db, "single_target")
    batch = [
        Transition(shared, True, at(1)),
        Transition(single, False, at(1)),
        Transition(shared, True, at(2)),  # a refresh of the same state: no row
        Transition(shared, False, at(3)),
        Transition(single, False, at(4)),
    ]
    result = await write_batch(db, batch)
    assert (result.changes, result.rows) == (3, 5)
    expected = [(True, at(1)), (False, at(3))]
    assert await statuses(db, first) == expected
    assert await statuses(db, second) == expected
    assert await statuses(db, only) == [(False, at(1))]
    target = await db.fetchrow("SELECT last_is_online, last_status_at FROM targets WHERE id = $1", shared)
    assert target is not None
    assert (target["last_is_online"], target["last_status_at"]) == (False, at(3))


async def test_later_batches_compare_with_the_targets_last_state(db: Connection) -> None:
    target, (tracked,) = await bare_target(db, "continued_target")
    await write_batch(db, [Transition(target, True, at(10))])
    await write_batch(db, [Transition(target, True, at(20)), Transition(target, False, at(30))])
    await write_batch(db, [Transition(target, False, at(40)), Transition(target, True, at(50))])
    assert await statuses(db, tracked) == [(True, at(10)), (False, at(30)), (True, at(50))]


async def test_out_of_order_transitions_in_a_batch_are_applied_in_time_order(db: Connection) -> None:
    target, (tracked,) = await bare_target(db, "unordered_target")
    await write_batch(db, [Transition(target, False, at(3)), Transition(target, True, at(1))])
    assert await statuses(db, tracked) == [(True, at(1)), (False, at(3))]


async def test_retrying_a_committed_batch_writes_nothing_twice(db: Connection) -> None:
    target, (tracked,) = await bare_target(db, "retried_target")
    other, (other_tracked,) = await bare_target(db, "retried_other")
    batch = [Transition(target, True, at(1)), Transition(target, False, at(2)), Transition(other, True, at(2))]
    first = await write_batch(db, batch)
    again = await write_batch(db, batch)
    assert (first.rows, again.rows, again.changes) == (3, 0, 0)
    # A retry that overlaps newer transitions keeps only what is new.
    overlapping = await write_batch(db, [*batch, Transition(target, True, at(5))])
    assert overlapping.rows == 1
    assert await statuses(db, tracked) == [(True, at(1)), (False, at(2)), (True, at(5))]
    assert await statuses(db, other_tracked) == [(True, at(2))]


async def test_one_notification_per_batch(db: Connection, database_url: str) -> None:
    targets = [await bare_target(db, f"notified_{i}", subscribers=2) for i in range(5)]
    received: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(database_url)
    try:
        await listener.add_listener(CHANNEL_STATUSES, lambda *args: received.put_nowait(args[3]))
        batch = [Transition(t, i % 2 == 0, at(i)) for t, _ in targets for i in range(1, 21)]
        result = await write_batch(db, batch)
        assert result.rows == 5 * 20 * 2
        top = await db.fetchval("SELECT max(id) FROM online_statuses")
        assert await asyncio.wait_for(received.get(), 5) == str(top)
        await asyncio.sleep(0.3)
        assert received.empty()
    finally:
        await listener.close()


async def test_visibility_marks_subscribers_not_visible_online(db: Connection) -> None:
    target, tracked = await bare_target(db, "hiding_target", subscribers=2)
    await write_batch(db, [], {target: "hidden"})
    assert await db.fetchval("SELECT visibility FROM targets WHERE id = $1", target) == "hidden"
    hidden = await db.fetch("SELECT visible_online FROM tracked_users WHERE target_id = $1", target)
    assert [r["visible_online"] for r in hidden] == [False, False]
    await write_batch(db, [], {target: "visible"})
    assert {r["visible_online"] for r in await db.fetch("SELECT visible_online FROM tracked_users")} == {True}
    assert len(tracked) == 2


async def test_writer_batches_in_background_and_flushes_on_close(db: Connection, database_url: str) -> None:
    targets = [await bare_target(db, f"buffered_{i}") for i in range(20)]
    writer = StatusWriter(database_url, linger=0.01)
    writer.start()
    for second in range(1, 51):
        writer.submit_many(Transition(t, second % 2 == 1, at(second)) for t, _ in targets)
    writer.set_visibility(targets[0][0], "hidden_by_tracker_privacy")
    assert await writer.close(within=30)
    assert writer.pending == 0
    assert writer.batches < 50  # coalesced
    assert await db.fetchval("SELECT count(*) FROM online_statuses") == 20 * 50
    assert await db.fetchval("SELECT visibility FROM targets WHERE id = $1", targets[0][0]) == (
        "hidden_by_tracker_privacy"
    )


async def test_nothing_is_lost_or_duplicated_while_postgres_restarts(
    db: Connection, database_url: str, postgres_server: PostgresServer
) -> None:
    server = postgres_server.require_embedded()
    targets = [await bare_target(db, f"outage_{i}") for i in range(10)]
    await db.close()
    writer = StatusWriter(database_url, linger=0.001, max_retry_delay=0.2)
    writer.start()
    second = 0

    async def produce(seconds: float) -> None:
        nonlocal second
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            second += 1
            writer.submit_many(Transition(t, second % 2 == 1, at(second)) for t, _ in targets)
            await asyncio.sleep(0.002)

    await produce(0.3)
    server.restart()  # blocks the loop: the writer's connection dies under it
    await produce(0.3)
    server.stop()
    await produce(0.5)  # Postgres is gone: everything stays buffered
    assert writer.pending > 0
    server.start()
    await produce(0.3)
    assert await writer.close(within=60)
    assert writer.failures > 0
    check = await asyncpg.connect(database_url)
    try:
        counts = await check.fetch(
            """SELECT u.target_id, count(*) AS n, count(DISTINCT s.created_at) AS distinct_times
               FROM online_statuses s JOIN tracked_users u ON u.id = s.tracked_user_id GROUP BY u.target_id"""
        )
    finally:
        await check.close()
    assert len(counts) == 10
    for row in counts:
        assert row["n"] == second
        assert row["distinct_times"] == second

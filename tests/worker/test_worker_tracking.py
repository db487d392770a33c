"""The worker against the sandbox, in process: enrolment, initial status, pushes, expiry, privacy, resync."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any, TypeAlias

import asyncpg

from seeonline.sandbox import SandboxServer
from tests.polling import wait_until
from tests.worker import builders
from tests.worker.conftest import TrackerFactory, WorkerRunner

Connection: TypeAlias = "asyncpg.Connection[Any]"


def whole_seconds(timestamp: float) -> datetime:
    """A sandbox time as Telegram reports it (TL dates have second precision)."""
    return datetime.fromtimestamp(int(timestamp), tz=UTC)


async def test_worker_enrols_targets_records_initial_status_and_pushes(
    sandbox: SandboxServer, db: Connection, make_tracker: TrackerFactory, run_worker_in_process: WorkerRunner
) -> None:
    tracker = await make_tracker()
    alice = sandbox.world.add_person("alice_tracked", last_seen_ago=600)
    bob = sandbox.world.add_person("bob_tracked", online=True)
    owner = await builders.person(db)
    alice_rows = [
        await builders.subscribe(db, "alice_tracked", tracker.tracker_id),
        await builders.subscribe(db, "alice_tracked", owner=owner),
    ]
    bob_row = await builders.subscribe(db, "bob_tracked")
    async with run_worker_in_process(tracker.tracker_id):
        await wait_until(lambda: _true(sandbox.world.users[tracker.account.id].contacts == {alice.id, bob.id}))
        # Initial statuses: alice offline at her exact last-seen, bob online now.
        first = await wait_until(lambda: builders.statuses(db, alice_rows[0]))
        assert first == [(False, whole_seconds(alice.was_online))]
        assert await builders.statuses(db, alice_rows[1]) == first
        assert [s for s, _ in await wait_until(lambda: builders.statuses(db, bob_row))] == [True]
        peers = await db.fetch("SELECT target_id, user_id, access_hash FROM tracker_peers ORDER BY user_id")
        assert [(p["user_id"], p["access_hash"]) for p in peers] == [
            (alice.id, sandbox.world.access_hash(tracker.account.id, alice.id)),
            (bob.id, sandbox.world.access_hash(tracker.account.id, bob.id)),
        ]
        assert await db.fetchval("SELECT telegram_id FROM targets WHERE username = 'alice_tracked'") == alice.id

        sandbox.world.set_status("alice_tracked", online=True)
        await wait_until(lambda: _count(db, alice_rows[0], 2))
        await _next_second()  # was_online has second precision: keep it after the online we stamped
        sandbox.world.set_status("alice_tracked", online=False)
        rows = await wait_until(lambda: _count(db, alice_rows[0], 3))
        assert [s for s, _ in rows] == [False, True, False]
        assert rows[2][1] == whole_seconds(alice.was_online)  # the exact was_online, not the arrival time
        assert await builders.statuses(db, alice_rows[1]) == rows

        health = await db.fetchrow("SELECT state, last_heartbeat_at FROM tracker_health")
        assert health is not None
        assert health["state"] == "ok"
        assert health["last_heartbeat_at"] is not None
        assert {r["visibility"] for r in await db.fetch("SELECT visibility FROM targets")} == {"visible"}
    assert len(sandbox.calls_to("contacts.resolveUsername")) == 2
    assert len(sandbox.calls_to("contacts.addContact")) == 2
    assert await db.fetchval("SELECT state FROM tracker_health") == "stopped"


async def test_restarted_worker_uses_persisted_peers_and_never_resolves_again(
    sandbox: SandboxServer, db: Connection, make_tracker: TrackerFactory, run_worker_in_process: WorkerRunner
) -> None:
    tracker = await make_tracker()
    sandbox.world.add_person("carol_tracked")
    row = await builders.subscribe(db, "carol_tracked", tracker.tracker_id)
    async with run_worker_in_process(tracker.tracker_id):
        await wait_until(lambda: builders.statuses(db, row))
    async with run_worker_in_process(tracker.tracker_id) as running:
        await wait_until(lambda: _true(running.worker.telegram is not None and running.worker.telegram.resyncs > 0))
        sandbox.world.set_status("carol_tracked", online=True)
        await wait_until(lambda: _count(db, row, 2))
    assert len(sandbox.calls_to("contacts.resolveUsername")) == 1
    assert len(sandbox.calls_to("contacts.addContact")) == 1  # still a contact after the restart


async def test_online_expiry_without_an_offline_push_records_offline_at_expires(
    sandbox: SandboxServer, db: Connection, make_tracker: TrackerFactory, run_worker_in_process: WorkerRunner
) -> None:
    tracker = await make_tracker()
    sandbox.world.add_person("dave_tracked")
    row = await builders.subscribe(db, "dave_tracked", tracker.tracker_id)
    async with run_worker_in_process(tracker.tracker_id):
        await wait_until(lambda: builders.statuses(db, row))
        person = sandbox.world.set_status("dave_tracked", online=True, expires_in=1.5)
        assert person.online_until is not None
        expires = whole_seconds(person.online_until)
        rows = await wait_until(lambda: _count(db, row, 3))
    assert [s for s, _ in rows] == [False, True, False]
    assert rows[2][1] == expires


async def test_hidden_statuses_set_visibility_not_offline(
    sandbox: SandboxServer, db: Connection, make_tracker: TrackerFactory, run_worker_in_process: WorkerRunner
) -> None:
    tracker = await make_tracker()
    sandbox.world.add_person("erin_hidden", privacy="nobody")
    sandbox.world.add_person("frank_visible")
    hidden_row = await builders.subscribe(db, "erin_hidden", tracker.tracker_id)
    visible_row = await builders.subscribe(db, "frank_visible", tracker.tracker_id)
    async with run_worker_in_process(tracker.tracker_id):
        await wait_until(lambda: builders.statuses(db, visible_row))
        await wait_until(lambda: _visibility(db, "erin_hidden", "hidden"))
        assert await db.fetchval("SELECT visible_online FROM tracked_users WHERE id = $1", hidden_row) is False
        sandbox.world.set_status("erin_hidden", online=True)
        sandbox.world.set_status("frank_visible", online=True)
        await wait_until(lambda: _count(db, visible_row, 2))
        assert await builders.statuses(db, hidden_row) == []
        # The person opens up: the next push makes the target visible again and its status flows.
        sandbox.world.set_privacy("erin_hidden", "everybody")
        await wait_until(lambda: _visibility(db, "erin_hidden", "visible"))
        assert await db.fetchval("SELECT visible_online FROM tracked_users WHERE id = $1", hidden_row) is True
        assert [s for s, _ in await wait_until(lambda: builders.statuses(db, hidden_row))] == [True]


async def test_unknown_username_is_marked_not_found(
    sandbox: SandboxServer, db: Connection, make_tracker: TrackerFactory, run_worker_in_process: WorkerRunner
) -> None:
    tracker = await make_tracker()
    await builders.subscribe(db, "nobody_by_that_name", tracker.tracker_id)
    async with run_worker_in_process(tracker.tracker_id):
        await wait_until(lambda: _visibility(db, "nobody_by_that_name", "not_found"))
    assert await db.fetchval("SELECT count(*) FROM tracker_peers") == 0


async def test_dropped_connection_is_followed_by_a_resync_that_closes_the_gap(
    sandbox: SandboxServer, db: Connection, make_tracker: TrackerFactory, run_worker_in_process: WorkerRunner
) -> None:
    tracker = await make_tracker()
    sandbox.world.add_person("hank_tracked")
    row = await builders.subscribe(db, "hank_tracked", tracker.tracker_id)
    async with run_worker_in_process(tracker.tracker_id):
        await wait_until(lambda: builders.statuses(db, row))
        resyncs = len(sandbox.calls_to("contacts.getStatuses"))
        assert sandbox.drop_connections(tracker.account) >= 1
        # Pushed while the worker has no connection: lost, as with Telegram; the resync must recover it.
        sandbox.world.set_status("hank_tracked", online=True)
        await wait_until(lambda: _true(len(sandbox.calls_to("contacts.getStatuses")) > resyncs))
        rows = await wait_until(lambda: _count(db, row, 2))
        assert [s for s, _ in rows] == [False, True]


async def test_targets_follow_the_database_added_and_removed_through_notify(
    sandbox: SandboxServer, db: Connection, make_tracker: TrackerFactory, run_worker_in_process: WorkerRunner
) -> None:
    tracker = await make_tracker()
    ivan = sandbox.world.add_person("ivan_later")
    async with run_worker_in_process(tracker.tracker_id) as running:
        await wait_until(lambda: _true(running.worker.telegram is not None and running.worker.telegram.resyncs > 0))
        row = await builders.subscribe(db, "ivan_later", tracker.tracker_id)
        await wait_until(lambda: builders.statuses(db, row))
        assert ivan.id in sandbox.world.users[tracker.account.id].contacts
        await db.execute("SELECT so_unsubscribe($1::bigint[])", [row])
        await wait_until(lambda: _true(ivan.id not in sandbox.world.users[tracker.account.id].contacts))


async def _next_second() -> None:
    await asyncio.sleep(1.05 - time.time() % 1)


async def _true(value: bool) -> bool:
    return value


async def _count(db: Connection, tracked_user_id: int, n: int) -> list[tuple[bool, datetime]] | None:
    rows = await builders.statuses(db, tracked_user_id)
    assert len(rows) <= n, rows
    return rows if len(rows) == n else None


async def _visibility(db: Connection, username: str, wanted: str) -> bool:
    return bool(await db.fetchval("SELECT visibility FROM targets WHERE username = $1", username) == wanted)


async def _health(db: Connection, tracker_id: int, wanted: str) -> bool:
    state = await db.fetchval("SELECT state FROM tracker_health WHERE tracker_account_id = $1", tracker_id)
    return bool(state == wanted)

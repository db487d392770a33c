"""The status book against real Postgres: stale loaded state, echoes, and a closed book."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

import asyncpg
from telethon.tl import types

from seeonline_supervisor.worker.book import StatusBook, TargetState
from seeonline_supervisor.worker.ingest import StatusWriter, Transition, write_batch
from tests.worker.builders import bare_target, statuses

Connection: TypeAlias = "asyncpg.Connection[Any]"
USER_ID = 777_001


async def _loaded(db: Connection, target_id: int, username: str) -> TargetState:
    """The target as a worker loads it when the target is assigned to its tracker."""
    row = await db.fetchrow("SELECT last_is_online, last_status_at FROM targets WHERE id = $1", target_id)
    assert row is not None
    return TargetState(
        target_id=target_id, username=username, last_online=row["last_is_online"], last_at=row["last_status_at"]
    )


async def test_a_change_equal_to_a_stale_loaded_state_is_still_recorded(db: Connection, database_url: str) -> None:
    target, (tracked,) = await bare_target(db, "moving_target")
    went_online = datetime.now(UTC) - timedelta(seconds=120)
    await write_batch(db, [Transition(target, True, went_online)])  # recorded by the tracker it leaves
    writer = StatusWriter(database_url, linger=0.001)
    writer.start()
    book = StatusBook(writer)
    state = await _loaded(db, target, "moving_target")  # online, as loaded by the new tracker
    book.add(state)
    book.bind(state, USER_ID, 1)
    # Meanwhile the old tracker closes the online at its expiry: the loaded state is stale now.
    expired = went_online + timedelta(seconds=60)
    await write_batch(db, [Transition(target, False, expired)])
    # The person comes back online: equal to the loaded state, but a change for the database.
    assert book.observe(USER_ID, types.UserStatusOnline(expires=datetime.now(UTC) + timedelta(minutes=5)))
    # Echoes of the known state are no new row (the INSERT decides, under the target's row lock).
    book.observe(USER_ID, types.UserStatusOnline(expires=datetime.now(UTC) + timedelta(minutes=5)))
    assert await writer.close(within=10)
    book.close()
    rows = await statuses(db, tracked)
    assert [s for s, _ in rows] == [True, False, True]
    assert rows[:2] == [(True, went_online), (False, expired)]


async def test_a_closed_book_writes_nothing_more(db: Connection, database_url: str) -> None:
    target, (tracked,) = await bare_target(db, "drained_target")
    writer = StatusWriter(database_url, linger=0.001)
    book = StatusBook(writer)
    state = TargetState(target_id=target, username="drained_target")
    book.add(state)
    book.bind(state, USER_ID, 1)
    book.observe(USER_ID, types.UserStatusOnline(expires=datetime.now(UTC) + timedelta(minutes=5)))
    assert state.expiry is not None
    assert writer.submitted == 1
    book.close()  # the worker retires: its targets are drained to other trackers
    assert state.expiry is None
    book.observe(USER_ID, types.UserStatusOffline(was_online=datetime.now(UTC)))
    assert writer.submitted == 1
    writer.start()
    assert await writer.close(within=10)
    assert [s for s, _ in await statuses(db, tracked)] == [True]


async def test_two_usernames_of_one_telegram_user_are_both_recorded(db: Connection, database_url: str) -> None:
    first, (first_tracked,) = await bare_target(db, "old_name")
    second, (second_tracked,) = await bare_target(db, "new_name")
    writer = StatusWriter(database_url, linger=0.001)
    writer.start()
    book = StatusBook(writer)
    for target, username in ((first, "old_name"), (second, "new_name")):
        state = TargetState(target_id=target, username=username)
        book.add(state)
        book.bind(state, USER_ID, 1)  # both usernames resolved to the same person
    went_offline = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    assert book.observe(USER_ID, types.UserStatusOffline(was_online=went_offline))
    book.remove(first)
    # The other username still listens to the person's pushes.
    assert book.observe(USER_ID, types.UserStatusOnline(expires=datetime.now(UTC) + timedelta(minutes=5)))
    assert await writer.close(within=10)
    book.close()
    assert [s for s, _ in await statuses(db, first_tracked)] == [False]
    assert [s for s, _ in await statuses(db, second_tracked)] == [False, True]


async def test_a_snapshot_older_than_a_push_writes_no_false_flip(db: Connection, database_url: str) -> None:
    target, (tracked,) = await bare_target(db, "racing_target")
    writer = StatusWriter(database_url, linger=0.001)
    writer.start()
    book = StatusBook(writer)
    state = TargetState(target_id=target, username="racing_target")
    book.add(state)
    book.bind(state, USER_ID, 1)
    asked_at = datetime.now(UTC)  # contacts.getStatuses sent; it will answer "online"
    went_offline = asked_at + timedelta(milliseconds=200)
    book.observe(USER_ID, types.UserStatusOffline(was_online=went_offline))  # a push overtakes the answer
    book.observe(
        USER_ID, types.UserStatusOnline(expires=asked_at + timedelta(minutes=5)), snapshot_at=asked_at
    )  # stale
    assert await writer.close(within=10)
    book.close()
    assert [s for s, _ in await statuses(db, tracked)] == [False]

"""Gap-safe event ids: writers that commit out of id order are still read completely, in order, once."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import asyncpg

from seeonline.database.pool import create_pool
from seeonline.events.hub import EventHub
from seeonline.events.log import EventFilter, read_after
from tests.events.support import add_tracked_users
from tests.polling import wait_until

WRITERS = 12
ROUNDS = 4


async def test_writers_committing_out_of_id_order_are_read_once_each(
    database_url: str, db: asyncpg.Connection[Any]
) -> None:
    tracked = await add_tracked_users(db, WRITERS)
    pool = await create_pool(database_url, size=4)
    hub = EventHub(database_url, pool)
    await hub.start()
    await wait_until(hub.connected.is_set, what="the hub's listener")
    subscriber = hub.subscribe("key", EventFilter())
    writers = [await asyncpg.connect(database_url) for _ in range(WRITERS)]
    follower_seen: list[int] = []
    naive_seen: list[int] = []
    expected: list[int] = []
    try:
        for round_number in range(ROUNDS):
            transactions = []
            for index, connection in enumerate(writers):  # ids handed out in this order…
                transaction = connection.transaction()
                await transaction.start()
                rows = await connection.fetch(
                    "INSERT INTO online_statuses (tracked_user_id, is_online, created_at, source)"
                    " SELECT $1, n % 2 = 0, now() + n * interval '1 ms', 'api' FROM generate_series(1, 3) n"
                    " RETURNING id",
                    tracked[index],
                )
                expected += [row[0] for row in rows]
                transactions.append(transaction)
            order = list(range(WRITERS))
            random.Random(round_number).shuffle(order)
            order.sort(key=lambda i: i == 0)  # the lowest ids commit last: a naive follower must skip them
            for index in order:  # …and committed in another
                await transactions[index].commit()
                async with pool.acquire() as reader:
                    # A follower of event ids, reading after every commit…
                    cursor = follower_seen[-1] if follower_seen else 0
                    follower_seen += [e.id for e in await read_after(reader, cursor)]
                    # …and a follower of the status ids themselves, the way that loses rows.
                    naive_cursor = max(naive_seen, default=0)
                    naive_seen += [
                        row[0]
                        for row in await reader.fetch(
                            "SELECT id FROM online_statuses WHERE id > $1 ORDER BY id", naive_cursor
                        )
                    ]
        status_of_event = dict(await db.fetch("SELECT id, status_id FROM events"))
        assert sorted(status_of_event[event] for event in follower_seen) == sorted(expected)
        assert len(follower_seen) == len(set(follower_seen)) == len(expected)
        assert follower_seen == sorted(follower_seen)
        assert len(set(naive_seen)) < len(expected)  # the trap the event log avoids is real here

        await wait_until(lambda: subscriber.pending_events == len(expected), what="the hub's fan-out")
        fanned = [event_id for chunk in subscriber.pending for event_id in chunk.ids]
        assert fanned == sorted(set(fanned)) == sorted(status_of_event)
    finally:
        for connection in writers:
            await connection.close()
        await hub.stop()
        await pool.close()


async def test_concurrent_batches_from_many_connections_lose_nothing(
    database_url: str, db: asyncpg.Connection[Any]
) -> None:
    tracked = await add_tracked_users(db, 8)
    pool = await create_pool(database_url, size=10)
    stop = asyncio.Event()
    seen: list[int] = []

    async def follow() -> None:
        cursor = 0
        while True:
            writers_done = stop.is_set()  # before the read: a read that began earlier may miss the last commits
            async with pool.acquire() as connection:
                events = await read_after(connection, cursor)
            seen.extend(e.id for e in events)
            cursor = seen[-1] if seen else 0
            if writers_done and not events:
                return
            await asyncio.sleep(0)

    async def write(tracked_user_id: int) -> None:
        rng = random.Random(tracked_user_id)
        for _ in range(25):
            async with pool.acquire() as connection, connection.transaction():
                await connection.execute(
                    "INSERT INTO online_statuses (tracked_user_id, is_online, source)"
                    " SELECT $1, n % 2 = 0, 'api' FROM generate_series(1, $2) n",
                    tracked_user_id,
                    rng.randint(1, 5),
                )
                await asyncio.sleep(rng.random() / 200)  # hold the transaction: commits interleave

    try:
        reader = asyncio.create_task(follow())
        await asyncio.gather(*(write(t) for t in tracked))
        stop.set()
        await reader
        assert seen == sorted(set(seen))
        assert seen == [row[0] for row in await db.fetch("SELECT id FROM events ORDER BY id")]
        assert len(seen) == await db.fetchval("SELECT count(*) FROM online_statuses")
    finally:
        await pool.close()


async def test_the_hub_stops_when_a_notification_arrives_as_it_is_stopped(database_url: str) -> None:
    """Python 3.11's ``wait_for`` drops a cancellation that arrives as the awaited event is set; the
    reader must still end (it hung app shutdown: the lifespan waited for it for ever)."""
    pool = await create_pool(database_url, size=2)
    hub = EventHub(database_url, pool)
    try:
        await hub.start()
        await wait_until(hub.connected.is_set, what="the hub's listener")
        stop_listening = hub._listener.stop

        async def stop_as_a_notification_arrives() -> None:
            await stop_listening()
            hub._on_notify("seeonline_events", "")  # in the same step as the cancellation that follows

        hub._listener.stop = stop_as_a_notification_arrives  # type: ignore[method-assign]
        stopping = asyncio.ensure_future(hub.stop())
        done, _ = await asyncio.wait({stopping}, timeout=15)  # never cancels it: stop() would swallow that
        assert stopping in done, "the hub's reader kept running after stop()"
    finally:
        for task in hub._tasks:  # a reader that survived must not outlive the test
            while not task.done():
                task.cancel()
                await asyncio.sleep(0.01)
        await pool.close()

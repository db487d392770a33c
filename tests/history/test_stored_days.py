"""Stored days (history_days): read back, they say what sweeping the same days says, and a change makes them stale."""

from __future__ import annotations

import asyncio
import datetime
import json
import random
import zoneinfo
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from seeonline.database.channels import HISTORY_LOCK_SPACE
from seeonline.history import daily, resources
from seeonline.history.storing import LOCK, store_days, store_user_days
from tests.history import builders as b

GAP, STALE = datetime.timedelta(seconds=60), resources.UPTIME_STALE
SOURCES = ["push", "was_online", "expires", "resync", "api", None]
HOUR = datetime.timedelta(hours=1)


class Rollback(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Leaves the comparing transaction without a trace."""


def today_in(tz: str) -> datetime.date:
    return datetime.datetime.now(zoneinfo.ZoneInfo(tz)).date()


async def random_history(db: Any, rng: random.Random, tz: str) -> b.Subject:
    """Twelve days of statuses of every source, a watch with a gap, worker periods with gaps (the last one
    live or recorded through), a hidden spell; the last row at least a minute ago."""
    now = datetime.datetime.now(b.UTC)
    since = now - datetime.timedelta(days=12)
    owner = await b.owner(db, tz)
    person = await b.subject(db, owner, since, watched_by=None)
    tracker = rng.randrange(10_000, 10**9)
    cut = since + datetime.timedelta(hours=rng.uniform(24, 200))
    await b.watch(db, person.target_id, tracker, since, cut)
    await b.watch(db, person.target_id, tracker, cut + datetime.timedelta(minutes=rng.uniform(1, 600)))
    down = since + datetime.timedelta(hours=rng.uniform(12, 250))
    await b.uptime(db, tracker, since - HOUR, down)
    back = down + datetime.timedelta(minutes=rng.uniform(0.5, 300))
    if rng.random() < 0.5:  # a worker connected now, beating
        await db.execute("INSERT INTO tracker_uptimes VALUES ($1, $2, now(), false)", tracker, back)
    else:
        await b.uptime(db, tracker, back, None)
    hidden = since + datetime.timedelta(hours=rng.uniform(0, 280))
    await b.visibility(db, person.target_id, hidden, "hidden")
    await b.visibility(db, person.target_id, hidden + datetime.timedelta(minutes=rng.uniform(1, 900)), "visible")
    times = sorted(since + (now - since - datetime.timedelta(minutes=1)) * rng.random() for _ in range(60))
    # Sessions close to midnight and shorter gaps than the merge gap, too.
    times += [now - datetime.timedelta(days=rng.randrange(1, 10), seconds=rng.uniform(-90, 90)) for _ in range(6)]
    rows = [(at, rng.random() < 0.5, rng.choice(SOURCES)) for at in sorted(times)]
    await b.statuses(db, person.id, rows)
    return person


async def daily_three_ways(db: Any, tracked_id: int, first: datetime.date, last: datetime.date) -> tuple[Any, ...]:
    """In one transaction (one now): read back from stored days, swept with them, swept without them."""
    args = (tracked_id, None, first, last, STALE, GAP)
    try:
        async with db.transaction():
            stored = await db.fetchrow(daily.DAILY_STORED, *args)
            with_stored = await db.fetchrow(daily.DAILY_SWEPT, *args)
            through_function = await db.fetchrow(daily.DAILY, *args)
            await db.execute("DELETE FROM history_days WHERE tracked_user_id = $1", tracked_id)
            swept = await db.fetchrow(daily.DAILY_SWEPT, *args)
            raise Rollback
    except Rollback:
        pass
    return stored, with_stored, through_function, swept


@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin", "America/New_York"])
async def test_stored_days_read_back_say_what_sweeping_says(db: Any, tz: str) -> None:
    rng = random.Random(f"stored-{tz}")
    for _ in range(6):
        person = await random_history(db, rng, tz)
        assert await store_user_days(db, person.id)
        today = today_in(tz)
        stored_count = await db.fetchval("SELECT count(*) FROM history_days WHERE tracked_user_id = $1", person.id)
        assert stored_count >= 12  # from its creation to today
        for first, last in [(today - datetime.timedelta(days=11), today + datetime.timedelta(days=2)),
                            (today - datetime.timedelta(days=6), today - datetime.timedelta(days=4)),
                            (today, today)]:  # fmt: skip
            stored, with_stored, through_function, swept = await daily_three_ways(db, person.id, first, last)
            assert stored is not None, "the stored days should have covered the range"
            assert stored["body"] == swept["body"]
            assert with_stored["body"] == swept["body"]
            assert through_function["body"] == swept["body"]
        for back in range(12):  # the timelines of the days that had ended, and today's (swept)
            day = today - datetime.timedelta(days=back)
            stored_timeline, swept_timeline = await timeline_two_ways(db, person.id, day)
            assert (stored_timeline is None) == (back == 0)
            if stored_timeline is not None:
                assert json.loads(stored_timeline["body"]) == json.loads(swept_timeline["body"])
                assert stored_timeline[2:] == swept_timeline[2:]  # username, theme, past


async def timeline_two_ways(db: Any, tracked_id: int, day: datetime.date) -> tuple[Any, Any]:
    """A day's timeline read back from its stored day, and swept."""
    args = (tracked_id, None, day, STALE)
    async with db.transaction():  # one now
        stored = await db.fetchrow(daily.TIMELINE_STORED, *args)
        swept = await db.fetchrow(resources.TIMELINE_SWEPT, *args)
        through_function = await db.fetchrow(daily.TIMELINE, *args)
    assert through_function["body"] == (stored or swept)["body"]
    return stored, swept


async def stored_person(db: Any, tz: str = "Europe/Berlin") -> tuple[b.Subject, int]:
    """A tracked user with ten days of flips every 5 hours, watched throughout, its days stored."""
    now = datetime.datetime.now(b.UTC)
    owner = await b.owner(db, tz)
    person = await b.subject(db, owner, now - datetime.timedelta(days=10), watched_by=None)
    tracker = random.randrange(10_000, 10**9)
    await b.watch(db, person.target_id, tracker, now - datetime.timedelta(days=10))
    await b.uptime(db, tracker, now - datetime.timedelta(days=10), None)
    rows: list[tuple[datetime.datetime, bool, str | None]] = [
        (now - datetime.timedelta(days=10) + n * 5 * HOUR, n % 2 == 0, "push") for n in range(47)
    ]
    await b.statuses(db, person.id, rows)
    assert await store_user_days(db, person.id)
    return person, tracker


async def dirty(db: Any, tracked_id: int) -> datetime.datetime | None:
    since: datetime.datetime | None = await db.fetchval(
        "SELECT since FROM history_dirty WHERE tracked_user_id = $1", tracked_id
    )
    return since


def days_ago(days: float) -> datetime.datetime:
    return datetime.datetime.now(b.UTC) - datetime.timedelta(days=days)


Change = Callable[[Any, b.Subject, int], Awaitable[Any]]
CHANGES: dict[str, Change] = {
    "status_inserted": lambda db, p, tracker: b.statuses(db, p.id, [(days_ago(4.3), True, "api")]),
    "status_deleted": lambda db, p, tracker: db.execute(
        "DELETE FROM online_statuses WHERE id = (SELECT id FROM online_statuses WHERE tracked_user_id = $1"
        " ORDER BY created_at OFFSET 20 LIMIT 1)",
        p.id,
    ),
    "status_updated": lambda db, p, tracker: db.execute(
        "UPDATE online_statuses SET is_online = NOT is_online WHERE id = (SELECT id FROM online_statuses"
        " WHERE tracked_user_id = $1 ORDER BY created_at OFFSET 25 LIMIT 1)",
        p.id,
    ),
    "watch_ended": lambda db, p, tracker: db.execute(
        "UPDATE target_watches SET ended_at = $2 WHERE target_id = $1", p.target_id, days_ago(3)
    ),
    "worker_down": lambda db, p, tracker: db.execute(
        "UPDATE tracker_uptimes SET seen_at = $2 WHERE tracker_account_id = $1", tracker, days_ago(2)
    ),
    "worker_period": lambda db, p, tracker: b.uptime(db, tracker, days_ago(11), days_ago(10.5)),
    "hidden": lambda db, p, tracker: b.visibility(db, p.target_id, days_ago(5), "hidden"),
    "followed_target_changed": lambda db, p, tracker: db.execute(
        "UPDATE tracked_users SET created_at = created_at + interval '3 days' WHERE id = $1", p.id
    ),
}


@pytest.mark.parametrize("change", list(CHANGES))
async def test_a_change_makes_the_stored_days_it_touches_stale(db: Any, change: str) -> None:
    person, tracker = await stored_person(db)
    today = today_in("Europe/Berlin")
    first = today - datetime.timedelta(days=10)
    before = (await daily_three_ways(db, person.id, first, today))[0]
    assert before is not None
    await CHANGES[change](db, person, tracker)
    assert await dirty(db, person.id) is not None
    stored, _, through_function, swept = await daily_three_ways(db, person.id, first, today)
    assert stored is None  # the stale days are not read back
    assert through_function["body"] == swept["body"] != before["body"]
    changed = [
        (now["date"], now)
        for was, now in zip(json.loads(before["body"]), json.loads(swept["body"]), strict=True)
        if was != now
    ]
    stored_timeline, _ = await timeline_two_ways(db, person.id, datetime.date.fromisoformat(changed[0][0]))
    assert stored_timeline is None
    assert await store_user_days(db, person.id)
    assert await dirty(db, person.id) is None
    stored, _, _, swept = await daily_three_ways(db, person.id, first, today)
    assert stored is not None
    assert stored["body"] == swept["body"]


async def test_a_heartbeat_marks_nothing_but_one_after_a_silence_does(db: Any) -> None:
    person, tracker = await stored_person(db)
    await db.execute("INSERT INTO tracker_uptimes VALUES ($1, now() - interval '1 hour', now(), false)", tracker)
    assert await store_user_days(db, person.id)
    await db.execute("UPDATE tracker_uptimes SET seen_at = now() + interval '5 seconds' WHERE NOT ended")
    assert await dirty(db, person.id) is None
    await db.execute("UPDATE tracker_uptimes SET seen_at = now() + interval '5 minutes' WHERE NOT ended")
    assert await dirty(db, person.id) is not None


async def test_a_worker_gone_silent_sends_the_read_to_the_sweep(db: Any) -> None:
    person, tracker = await stored_person(db)
    # Its worker's last heartbeat 10 s ago: still connected when the days are stored, silent 5 s later.
    await db.execute("UPDATE target_watches SET ended_at = NULL WHERE target_id = $1", person.target_id)
    await db.execute(
        "INSERT INTO tracker_uptimes VALUES ($1, now() - interval '1 hour', now() - interval '10 seconds', false)",
        tracker,
    )
    assert await store_user_days(db, person.id)
    today = today_in("Europe/Berlin")
    assert (await daily_three_ways(db, person.id, today, today))[0] is not None
    await asyncio.sleep(5.5)
    stored, _, through_function, swept = await daily_three_ways(db, person.id, today, today)
    assert stored is None  # from its last heartbeat on, nothing was observed: the stored state cannot go on
    assert through_function["body"] == swept["body"]


async def test_the_housekeeping_stores_who_needs_it(db: Any) -> None:
    person, _ = await stored_person(db, "Europe/Berlin")
    untouched = await b.subject(db, await b.owner(db, "UTC"), days_ago(2))
    assert await store_days(db) == 1  # the one not stored yet
    assert await db.fetchval("SELECT count(*) FROM history_days WHERE tracked_user_id = $1", untouched.id) == 3
    assert await store_days(db) == 0
    # The bot user moves to another zone: its days are stored again in it, the old ones dropped.
    await db.execute("UPDATE telegram_users SET timezone = 'Asia/Tokyo' WHERE id = $1", person.owner_id)
    assert await store_days(db) == 1
    zones = await db.fetch("SELECT DISTINCT tz FROM history_days WHERE tracked_user_id = $1", person.id)
    assert [row["tz"] for row in zones] == ["Asia/Tokyo"]


async def test_a_tracked_user_held_elsewhere_is_left_for_the_next_pass(db: Any, database_url: str) -> None:
    person, _ = await stored_person(db)
    await b.statuses(db, person.id, [(days_ago(1), True, "api")])
    other = await asyncpg.connect(database_url)
    try:
        async with other.transaction():
            assert await other.fetchval(LOCK, HISTORY_LOCK_SPACE, person.id)
            assert not await store_user_days(db, person.id)
            assert await dirty(db, person.id) is not None
    finally:
        await other.close()
    assert await store_user_days(db, person.id)
    assert await dirty(db, person.id) is None


async def test_a_deleted_tracked_user_takes_its_days_and_marks_with_it(db: Any) -> None:
    person, _ = await stored_person(db)
    await b.statuses(db, person.id, [(days_ago(1), True, "api")])
    await db.execute("DELETE FROM tracked_users WHERE id = $1", person.id)
    assert await db.fetchval("SELECT count(*) FROM history_days") == 0
    assert await db.fetchval("SELECT count(*) FROM history_dirty") == 0


async def test_a_tracked_user_marked_only_now_still_gets_its_past_days_stored(db: Any) -> None:
    person, _ = await stored_person(db)
    await db.execute("DELETE FROM history_days")
    await b.statuses(db, person.id, [(datetime.datetime.now(b.UTC), True, "push")])  # marks from now
    assert await store_user_days(db, person.id)
    assert await db.fetchval("SELECT count(*) FROM history_days WHERE tracked_user_id = $1", person.id) >= 11
    today = today_in("Europe/Berlin")
    stored, _, _, swept = await daily_three_ways(db, person.id, today - datetime.timedelta(days=9), today)
    assert stored is not None
    assert stored["body"] == swept["body"]


async def test_a_worker_that_died_unheard_is_found_out_when_its_tracker_connects_again(db: Any) -> None:
    # Yesterday's figures were stored an hour before midnight, online, watched by a connected worker. That worker
    # died unheard five minutes later (its period never ended); it connects again now. The new period must make
    # yesterday stale from the old period's last heartbeat, not from its own start.
    person, tracker = await stored_person(db)
    yesterday = today_in("Europe/Berlin") - datetime.timedelta(days=1)
    midnight = await db.fetchval(
        "SELECT so_local_midnight($1, 'Europe/Berlin')", yesterday + datetime.timedelta(days=1)
    )
    await db.execute("DELETE FROM tracker_uptimes WHERE tracker_account_id = $1", tracker)
    await db.execute("INSERT INTO tracker_uptimes VALUES ($1, $2, $3, false)", tracker,
                     midnight - datetime.timedelta(days=10), midnight - datetime.timedelta(minutes=55))  # fmt: skip
    await b.statuses(db, person.id, [(midnight - datetime.timedelta(hours=2), True, "push")])
    assert await store_user_days(db, person.id)
    # As if stored at 23:00, when the worker was still connected.
    await db.execute(
        "UPDATE history_days SET computed_at = $2::timestamptz, tail_state = 'online',"
        " tail_from = $2::timestamptz - interval '2 hours'"
        " WHERE tracked_user_id = $1 AND day = $3",
        person.id, midnight - HOUR, yesterday,
    )  # fmt: skip
    await db.execute("DELETE FROM history_dirty")
    await b.uptime(db, tracker, datetime.datetime.now(b.UTC) - datetime.timedelta(seconds=1), None)
    assert await dirty(db, person.id) == midnight - datetime.timedelta(minutes=55)
    stored, _, through_function, swept = await daily_three_ways(db, person.id, yesterday, yesterday)
    assert stored is None
    assert through_function["body"] == swept["body"]


async def test_a_row_dated_ahead_keeps_its_mark_until_its_time(db: Any) -> None:
    person, _ = await stored_person(db)
    ahead = datetime.datetime.now(b.UTC) + datetime.timedelta(hours=2)
    await b.statuses(db, person.id, [(ahead, True, "api")])
    assert await store_user_days(db, person.id)
    assert await dirty(db, person.id) == ahead  # the stored days cannot have seen it yet

"""Status-log housekeeping: partitions exist ahead of time, expired months are dropped whole."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import asyncpg

from seeonline.database.maintenance import drop_expired_status_partitions, ensure_status_partitions, housekeeping
from tests.worker import builders


async def partitions(db: asyncpg.Connection[Any]) -> set[str]:
    rows = await db.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'online_statuses'::regclass"
    )
    return {row["relname"] for row in rows}


async def test_partitions_are_kept_ahead_and_expired_ones_dropped(db: asyncpg.Connection[Any]) -> None:
    await ensure_status_partitions(db, months_ahead=3)
    today = datetime.datetime.now(datetime.UTC).date()
    ahead = today.replace(day=1) + datetime.timedelta(days=95)
    assert f"online_statuses_p{ahead:%Y_%m}" in await partitions(db)
    assert await ensure_status_partitions(db, months_ahead=3) == 0  # idempotent

    await db.execute("SELECT so_ensure_status_partitions('2024-01-01', 3)")
    await db.execute(
        "INSERT INTO telegram_users (telegram_id) VALUES (1);"
        "INSERT INTO targets (username) VALUES ('old_target');"
        "INSERT INTO tracked_users (telegram_user_id, target_id, username) VALUES (1, 1, 'old_target');"
    )
    await db.execute(
        "INSERT INTO online_statuses (tracked_user_id, is_online, created_at) VALUES"
        " (1, true, '2024-01-15'), (1, false, '2024-03-15'), (1, true, now())"
    )
    dropped = await drop_expired_status_partitions(db, retention_months=12, today=datetime.date(2025, 2, 10))
    assert dropped == ["online_statuses_p2024_01"]  # Feb 2024 onwards is within 12 months of Feb 2025
    remaining = await db.fetch("SELECT created_at FROM online_statuses ORDER BY created_at")
    assert len(remaining) == 2
    assert "online_statuses_p2024_02" in await partitions(db)


async def test_housekeeping_hands_waiting_targets_to_a_tracker_whose_flood_wait_ended(
    client: Any, db: asyncpg.Connection[Any]
) -> None:
    from tests.api.builders import follow, person, put_in_flood_wait, tracker  # noqa: PLC0415 - API builders

    account = await tracker(client, max_users=5)
    tracked = await follow(client, await person(client), "flooded_target")
    await put_in_flood_wait(db, account["id"], "300 milliseconds")
    assert (await client.get(f"/tracked-users/{tracked['id']}")).json()["tracker_account_id"] is None
    await asyncio.sleep(0.4)  # the wait is over; no row changed
    await housekeeping(db, retention_months=0, move_unresolved_after=600.0)
    assert (await client.get(f"/tracked-users/{tracked['id']}")).json()["tracker_account_id"] == account["id"]


async def test_a_month_with_rows_in_the_default_partition_still_gets_its_partition(db: asyncpg.Connection[Any]) -> None:
    await db.execute(
        "INSERT INTO telegram_users (telegram_id) VALUES (1);"
        "INSERT INTO targets (username) VALUES ('future_target');"
        "INSERT INTO tracked_users (telegram_user_id, target_id, username) VALUES (1, 1, 'future_target');"
        "INSERT INTO online_statuses (tracked_user_id, is_online, created_at) VALUES (1, true, '2031-08-15');"
    )
    assert await db.fetchval("SELECT count(*) FROM online_statuses_default") == 1
    assert await db.fetchval("SELECT so_ensure_status_partitions('2031-08-01', 1)") == 1
    assert await db.fetchval("SELECT count(*) FROM online_statuses_default") == 0
    assert await db.fetchval("SELECT count(*) FROM online_statuses_p2031_08") == 1
    # The moved row is still found through the parent, with its id, and new rows of that month go there.
    await db.execute(
        "INSERT INTO online_statuses (tracked_user_id, is_online, created_at) VALUES (1, false, '2031-08-16')"
    )
    assert await db.fetchval("SELECT count(*) FROM online_statuses_p2031_08") == 2
    assert await db.fetchval("SELECT count(*) FROM online_statuses WHERE tracked_user_id = 1") == 2


async def test_concurrent_partition_creation_is_safe(database_url: str) -> None:
    async def ensure() -> int:
        connection = await asyncpg.connect(database_url)
        try:
            created: int = await connection.fetchval("SELECT so_ensure_status_partitions('2032-01-01', 3)")
            return created
        finally:
            await connection.close()

    results = await asyncio.gather(*(ensure() for _ in range(4)))
    assert sorted(results) == [0, 0, 0, 3]


async def test_housekeeping_closes_an_online_interval_nobody_closed_at_its_expires(db: asyncpg.Connection[Any]) -> None:
    target, (first, second) = await builders.bare_target(db, "forgotten_online", subscribers=2)
    went_online = datetime.datetime(2026, 12, 1, 9, 0, tzinfo=datetime.UTC)
    expires = went_online + datetime.timedelta(minutes=5)
    for tracked_user in (first, second):
        await db.execute(
            "INSERT INTO online_statuses (tracked_user_id, is_online, created_at) VALUES ($1, true, $2)",
            tracked_user,
            went_online,
        )
    # Its worker was killed while it was online; nobody runs it now.
    await db.execute(
        "UPDATE targets SET last_is_online = true, last_status_at = $2, online_expires_at = $3 WHERE id = $1",
        target,
        went_online,
        expires,
    )
    still_open, _ = await builders.bare_target(db, "still_online", subscribers=1)
    await db.execute(
        "UPDATE targets SET last_is_online = true, last_status_at = now(), online_expires_at = now() + interval '1 min'"
        " WHERE id = $1",
        still_open,
    )
    await housekeeping(db, retention_months=0, move_unresolved_after=600.0)
    for tracked_user in (first, second):
        rows = await db.fetch(
            "SELECT is_online, created_at FROM online_statuses WHERE tracked_user_id = $1 ORDER BY created_at",
            tracked_user,
        )
        assert [(r["is_online"], r["created_at"]) for r in rows] == [(True, went_online), (False, expires)]
    state = await db.fetchrow(
        "SELECT last_is_online, last_status_at, online_expires_at FROM targets WHERE id = $1", target
    )
    assert state is not None
    assert dict(state) == {"last_is_online": False, "last_status_at": expires, "online_expires_at": None}
    assert await db.fetchval("SELECT last_is_online FROM targets WHERE id = $1", still_open) is True
    await housekeeping(db, retention_months=0, move_unresolved_after=600.0)  # nothing twice
    assert await db.fetchval("SELECT count(*) FROM online_statuses WHERE tracked_user_id = $1", first) == 2


async def test_housekeeping_wipes_expired_login_sessions_nobody_touches(db: asyncpg.Connection[Any]) -> None:
    await db.execute(
        "INSERT INTO tracker_logins (phone_number, api_id, api_hash_encrypted, session_encrypted, phone_code_hash,"
        " max_users, expires_at) VALUES"
        " ('+1', 1, 'x', 'expired-session', 'h', 1, now() - interval '1 second'),"
        " ('+2', 2, 'x', 'live-session', 'h', 1, now() + interval '10 minutes'),"
        " ('+3', 3, 'x', NULL, NULL, 1, now() - interval '2 days')"
    )
    await housekeeping(db, retention_months=0, move_unresolved_after=600.0)
    rows = await db.fetch("SELECT phone_number, session_encrypted, phone_code_hash FROM tracker_logins ORDER BY id")
    assert [tuple(row) for row in rows] == [("+1", None, None), ("+2", "live-session", "h")]

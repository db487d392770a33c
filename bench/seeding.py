"""Seed the benchmark database in a few set-based SQL statements (no HTTP, no ORM).

Shape (issue 2, "Performance"): 50 usable trackers (account + setting with a session + health ``ok``),
1,000 people with 10 tracked users each (10,000 distinct targets, spread evenly over the trackers so
every counter is exact), and 1,000,000 online-status rows: 100 per tracked user, one every
``STATUS_STEP`` from ``status_start``, each user offset by a few minutes so rows of one user are
scattered over the heap like a real append-only log.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass

import asyncpg

from seeonline.secrets import encrypt, lookup_hash, mask, tracker_api_hash, tracker_session

TRACKERS = 50
PEOPLE = 1_000
TRACKED_PER_PERSON = 10
STATUSES_PER_TRACKED = 100
# Room for the create/delete scenario: 10,000 seeded targets use 200 slots per tracker.
TRACKER_MAX_USERS = 2_000
PERSON_MAX_USERS = 1_000
TELEGRAM_ID_BASE = 500_000_000
STATUS_STEP = datetime.timedelta(hours=6)


@dataclass(frozen=True)
class Seeded:
    """What the scenarios need to build requests: id ranges and the status time grid."""

    person_ids: tuple[int, int]  # first, last telegram_users.id
    person_telegram_ids: tuple[int, int]  # first, last telegram_users.telegram_id
    tracked_ids: tuple[int, int]  # first, last tracked_users.id
    status_start: datetime.datetime  # the first status row of every user is within 6 minutes after this
    status_step: datetime.timedelta
    statuses: int
    seconds: float


async def seed(connection: asyncpg.Connection, secret_key: str) -> Seeded:
    """Fill an empty, migrated database; returns the id ranges."""
    began = time.monotonic()
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    # 100 rows every 6 h span 25 days: every row lands in the migration's monthly partitions.
    status_start = (now - STATUS_STEP * STATUSES_PER_TRACKED).replace(minute=0, second=0)
    tracked = PEOPLE * TRACKED_PER_PERSON
    per_tracker = tracked // TRACKERS

    # The ciphertexts name their row, so the ids are drawn first.
    ids = [
        row[0]
        for row in await connection.fetch(
            "SELECT nextval(pg_get_serial_sequence('tracker_accounts', 'id')) FROM generate_series(1, $1)", TRACKERS
        )
    ]
    accounts = [
        (
            TELEGRAM_ID_BASE + i,
            100_000 + i,
            encrypt(secret_key, f"benchhash{i:023d}", tracker_api_hash(account_id)),
            lookup_hash(secret_key, f"benchhash{i:023d}"),
            mask(f"benchhash{i:023d}"),
            f"+1555{i:07d}",
            encrypt(secret_key, f"bench-session-{i}", tracker_session(account_id)),
            account_id,
        )
        for i, account_id in enumerate(ids, start=1)
    ]
    async with connection.transaction():
        await connection.executemany(
            """
            WITH account AS (
                INSERT INTO tracker_accounts
                    (id, telegram_id, api_id, api_hash_encrypted, api_hash_lookup, api_hash_masked, is_active, is_auth)
                VALUES ($8, $1, $2, $3, $4, $5, true, true) RETURNING id
            ), setting AS (
                INSERT INTO tracker_settings (tracker_account_id, phone_number, session_encrypted, max_users)
                SELECT id, $6, $7, $9 FROM account
            )
            INSERT INTO tracker_health (tracker_account_id, state, last_heartbeat_at)
            SELECT id, 'ok', now() FROM account
            """,
            [(*row, TRACKER_MAX_USERS) for row in accounts],
        )
        await connection.execute(
            """
            INSERT INTO telegram_users (telegram_id, role, max_users, current_users)
            SELECT $1 + g, 'user', $2, $3 FROM generate_series(1, $4) g
            """,
            TELEGRAM_ID_BASE,
            PERSON_MAX_USERS,
            TRACKED_PER_PERSON,
            PEOPLE,
        )
        # Targets in tracker order, then tracked users: person p follows targets 10(p-1)+1 .. 10p.
        await connection.execute(
            """
            INSERT INTO targets (username, tracker_account_id, telegram_id, visibility)
            SELECT format('seeded_%s', lpad(g::text, 6, '0')),
                   (SELECT id FROM tracker_accounts ORDER BY id OFFSET (g - 1) % $2 LIMIT 1),
                   $3 + g, 'visible'
            FROM generate_series(1, $1) g
            """,
            tracked,
            TRACKERS,
            TELEGRAM_ID_BASE * 2,
        )
        await connection.execute(
            """
            INSERT INTO tracked_users (telegram_user_id, target_id, username)
            SELECT p.id, t.id, 'Seeded_' || substr(t.username, 8)
            FROM (SELECT id, username, row_number() OVER (ORDER BY id) AS n FROM targets) t
            JOIN (SELECT id, row_number() OVER (ORDER BY id) AS n FROM telegram_users) p
              ON p.n = (t.n - 1) / $1 + 1
            ORDER BY t.id
            """,
            TRACKED_PER_PERSON,
        )
        await connection.execute("UPDATE tracker_settings SET current_users = $1", per_tracker)
        # Time-ordered, like the real log: round k for every user, then round k + 1.
        await connection.execute(
            """
            INSERT INTO online_statuses (tracked_user_id, is_online, created_at)
            SELECT u.id, k % 2 = 0, $1::timestamptz + k * $2::interval + make_interval(mins => (u.id % 360)::int)
            FROM generate_series(0, $3 - 1) k
            CROSS JOIN tracked_users u
            ORDER BY k, u.id
            """,
            status_start,
            STATUS_STEP,
            STATUSES_PER_TRACKED,
        )
    await connection.execute("VACUUM ANALYZE")
    row = await connection.fetchrow(
        """
        SELECT (SELECT min(id) FROM telegram_users) AS p0, (SELECT max(id) FROM telegram_users) AS p1,
               (SELECT min(telegram_id) FROM telegram_users) AS t0, (SELECT max(telegram_id) FROM telegram_users) AS t1,
               (SELECT min(id) FROM tracked_users) AS u0, (SELECT max(id) FROM tracked_users) AS u1,
               (SELECT count(*) FROM online_statuses) AS statuses
        """
    )
    assert row is not None
    return Seeded(
        person_ids=(row["p0"], row["p1"]),
        person_telegram_ids=(row["t0"], row["t1"]),
        tracked_ids=(row["u0"], row["u1"]),
        status_start=status_start,
        status_step=STATUS_STEP,
        statuses=row["statuses"],
        seconds=time.monotonic() - began,
    )


async def check_counters(connection: asyncpg.Connection) -> list[str]:
    """Counter mismatches after the run (the slot engine must keep them exact); empty when all agree."""
    rows = await connection.fetch(
        """
        SELECT 'tracker ' || s.tracker_account_id || ': current_users=' || s.current_users
               || ' real=' || (SELECT count(*) FROM targets t WHERE t.tracker_account_id = s.tracker_account_id)
        FROM tracker_settings s
        WHERE s.current_users <> (SELECT count(*) FROM targets t WHERE t.tracker_account_id = s.tracker_account_id)
        UNION ALL
        SELECT 'person ' || p.id || ': current_users=' || p.current_users
               || ' real=' || (SELECT count(*) FROM tracked_users u WHERE u.telegram_user_id = p.id)
        FROM telegram_users p
        WHERE p.current_users <> (SELECT count(*) FROM tracked_users u WHERE u.telegram_user_id = p.id)
        """
    )
    return [row[0] for row in rows]

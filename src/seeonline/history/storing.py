"""Stores days' daily figures (history_days) so the daily route reads them back instead of sweeping.

Run by the supervisor's housekeeping: each pass stores the days of tracked users marked stale or without
today stored, within a time budget, each user in a transaction of its own under its lock (two supervisors
never store one user's days at once; a user another one holds is left for the next pass).
"""

from __future__ import annotations

import time
from typing import Any

import asyncpg

from seeonline.database.channels import HISTORY_LOCK_SPACE
from seeonline.history import daily, resources
from seeonline.history.params import DEFAULT_MERGE_GAP_S
from seeonline.history.reads import gap
from seeonline.logging import get_logger

log = get_logger(__name__)

CANDIDATES_PER_PASS = 500
PASS_BUDGET_S = 1.0
LOCK = "SELECT pg_try_advisory_xact_lock($1, ($2::bigint & 2147483647)::int)"


async def store_user_days(connection: Any, tracked_user_id: int) -> bool:
    """Store one tracked user's days (up to 366 of them); False when another session holds the user."""
    async with connection.transaction():
        if not await connection.fetchval(LOCK, HISTORY_LOCK_SPACE, tracked_user_id):
            return False
        await connection.execute(daily.STORE_DAYS, tracked_user_id, resources.UPTIME_STALE, gap(DEFAULT_MERGE_GAP_S))
    return True


async def store_days(connection: Any, budget_s: float = PASS_BUDGET_S, limit: int = CANDIDATES_PER_PASS) -> int:
    """One pass: store the days of the tracked users that need it, for at most ``budget_s``; how many were done."""
    deadline = time.monotonic() + budget_s
    candidates = await connection.fetch(daily.STORE_CANDIDATES, gap(DEFAULT_MERGE_GAP_S), limit)
    done = 0
    for candidate in candidates:
        if time.monotonic() > deadline:
            break
        try:
            stored = await store_user_days(connection, candidate["id"])
        except (asyncpg.PostgresError, TimeoutError) as exc:  # this user's days stay swept; the others go on
            log.warning("history_days_not_stored", tracked_user_id=candidate["id"], error=str(exc))
            continue
        done += stored
    if done:
        log.info("history_days_stored", tracked_users=done, candidates=len(candidates))
    return done

"""Housekeeping of the status log: monthly partitions ahead of time, and retention.

Run by the API at start-up and by the supervisor on its timer, so months never fall into the
default partition and old months go as whole tables (a DROP, not a slow DELETE).
"""

from __future__ import annotations

import datetime
import re
from typing import Any

from seeonline.logging import get_logger

log = get_logger(__name__)

MONTHS_AHEAD = 3
# A worker closes an online interval at its ``expires`` itself; the housekeeping does it for intervals
# nobody closed once they are this many seconds past it (a worker riding out an outage writes its own).
EXPIRED_ONLINE_CLOSE_AFTER = 120.0
PARTITION_NAME = re.compile(r"^online_statuses_p(\d{4})_(\d{2})$")


async def ensure_status_partitions(connection: Any, months_ahead: int = MONTHS_AHEAD) -> int:
    """Create this month's and the next ``months_ahead`` months' partitions; returns how many were new."""
    created: int = await connection.fetchval("SELECT so_ensure_status_partitions(now()::date, $1)", months_ahead + 1)
    if created:
        log.info("status_partitions_created", count=created)
    return created


async def drop_expired_status_partitions(
    connection: Any, retention_months: int, today: datetime.date | None = None
) -> list[str]:
    """Drop monthly partitions that ended more than ``retention_months`` months ago; their names."""
    today = today or datetime.datetime.now(datetime.UTC).date()
    cutoff_index = today.year * 12 + today.month - 1 - retention_months
    rows = await connection.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'online_statuses'::regclass"
    )
    dropped = []
    for row in rows:
        match = PARTITION_NAME.match(row["relname"])
        expired = match is not None and int(match[1]) * 12 + int(match[2]) - 1 < cutoff_index
        # By the schema's owner (the application role has DML only): db/sql/01_housekeeping.sql.
        if expired and await connection.fetchval("SELECT so_drop_status_partition($1)", row["relname"]):
            dropped.append(row["relname"])
    if dropped:
        log.info("status_partitions_dropped", partitions=dropped, retention_months=retention_months)
    return sorted(dropped)


async def move_unresolved(connection: Any, pause_over: float) -> int:
    """Move targets waiting for a tracker whose enrolment is paused longer than ``pause_over`` seconds."""
    moved: int = await connection.fetchval("SELECT so_move_unresolved(make_interval(secs => $1))", pause_over)
    return moved


async def housekeeping(connection: Any, retention_months: int, move_unresolved_after: float) -> None:
    """What the supervisor does on each reconcile pass, besides running workers.

    Waiting targets are offered free slots again (a flood wait that ended frees capacity without any
    row changing), targets stuck behind a long enrolment pause move to a tracker that can resolve
    them, online intervals nobody closed end at their ``expires``, partitions are kept ahead, and
    expired months are dropped, and expired tracker logins lose their pre-login session.
    """
    assigned = await connection.fetchval("SELECT so_pickup_waiting()")
    if assigned:
        log.info("waiting_targets_assigned", count=assigned)
    moved = await move_unresolved(connection, move_unresolved_after)
    if moved:
        log.info("unresolved_targets_moved", count=moved)
    closed = await connection.fetchval(
        "SELECT so_close_expired_online(make_interval(secs => $1))", EXPIRED_ONLINE_CLOSE_AFTER
    )
    if closed:
        log.info("expired_online_intervals_closed", count=closed)
    wiped = await connection.fetchval("SELECT so_sweep_logins()")
    if wiped:
        log.info("expired_login_sessions_wiped", count=wiped)
    await ensure_status_partitions(connection)
    if retention_months:
        await drop_expired_status_partitions(connection, retention_months)

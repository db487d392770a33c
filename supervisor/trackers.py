"""SQL of the supervisor: which trackers to run, FATAL marking and clearing.

A tracker is runnable (the view ``so_runnable_trackers``) when it is active, authorized, has a session
and is not auth_lost / banned / fatal / flood_wait-until-the-future; privacy_misconfigured ones run too
(without targets), so their worker can re-check and fix the privacy setting.
FATAL lasts until the tracker's account or setting row is updated after its health row was
(``updated_at`` is maintained by triggers; the drain that goes with FATAL runs in the same
transaction, so its own ``current_users`` update does not count as a change).

Takeover delay (the other half of the worker's lease with grace, see ``seeonline.lease``): a worker
that loses its lock connection may keep its Telegram session up to ``grace`` seconds while it re-takes
the lock, and never longer than its last written heartbeat + ``heartbeat_interval`` + ``grace``. So an
unlocked tracker whose ``last_heartbeat_at`` is younger than ``Lease.takeover_delay`` may still be
driven by a worker elsewhere: ``heartbeat_fresh_for`` says how many seconds are left. A health of
``stopped`` means its last worker stopped cleanly (Telegram disconnected first), so that one does not
wait. The supervisor applies the rule unless its own worker ran the tracker last (a crashed worker of
its own has no session left to overlap with).
"""

from __future__ import annotations

import datetime
from typing import Any, Union

import asyncpg
import msgspec

from seeonline.database.channels import TRACKER_LOCK_SPACE
from seeonline.health import HealthState

Connection = Union["asyncpg.Connection[Any]", "asyncpg.pool.PoolConnectionProxy[Any]"]

# The rule is the view so_runnable_trackers (db/sql/03_slots.sql): usable ones, and privacy_misconfigured
# ones (no targets, but a worker that re-checks and can fix the setting).
RUNNABLE_TRACKERS = f"""
SELECT a.id, a.api_id, a.api_hash_encrypted, s.session_encrypted,
       EXISTS (
           SELECT 1 FROM pg_locks l
           WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
             AND l.classid = $1::bigint::oid AND l.objid::bigint = a.id
       ) AS locked,
       CASE WHEN h.state IS DISTINCT FROM '{HealthState.STOPPED}'
                 AND h.last_heartbeat_at > now() - make_interval(secs => $2)
            THEN extract(epoch FROM h.last_heartbeat_at + make_interval(secs => $2) - now())::float8
            ELSE 0.0
       END AS heartbeat_fresh_for
FROM so_runnable_trackers u
JOIN tracker_accounts a ON a.id = u.tracker_account_id
JOIN tracker_settings s ON s.id = u.setting_id
LEFT JOIN tracker_health h ON h.tracker_account_id = a.id
ORDER BY a.id
"""

NEXT_FLOOD_WAIT_END = f"""
SELECT min(state_until) FROM tracker_health WHERE state = '{HealthState.FLOOD_WAIT}' AND state_until > now()
"""

STALE_FATAL = f"""
SELECT h.tracker_account_id
FROM tracker_health h
JOIN tracker_accounts a ON a.id = h.tracker_account_id
LEFT JOIN tracker_settings s ON s.tracker_account_id = h.tracker_account_id
WHERE h.state = '{HealthState.FATAL}' AND (a.updated_at > h.updated_at OR s.updated_at > h.updated_at)
"""

CLEAR_FATAL = f"""
UPDATE tracker_health h SET state = '{HealthState.STOPPED}', state_until = NULL
FROM tracker_accounts a
LEFT JOIN tracker_settings s ON s.tracker_account_id = a.id
WHERE a.id = h.tracker_account_id AND h.tracker_account_id = ANY($1::bigint[])
  AND h.state = '{HealthState.FATAL}' AND (a.updated_at > h.updated_at OR s.updated_at > h.updated_at)
RETURNING h.tracker_account_id
"""

STILL_RUNNABLE = "SELECT EXISTS (SELECT 1 FROM so_runnable_trackers WHERE tracker_account_id = $1)"

MARK_FATAL = f"""
INSERT INTO tracker_health (tracker_account_id, state, state_until, last_error)
VALUES ($1, '{HealthState.FATAL}', NULL, $2)
ON CONFLICT (tracker_account_id) DO UPDATE
SET state = '{HealthState.FATAL}', state_until = NULL, last_error = EXCLUDED.last_error
"""


class RunnableTracker(msgspec.Struct, frozen=True):
    """A tracker this host should run; ``locked`` means some worker holds its advisory lock now.

    ``heartbeat_fresh_for``: seconds until its heartbeat is ``takeover_delay`` old (0 when it is, or when
    its last worker stopped cleanly): until then a worker elsewhere may still use its session.
    """

    id: int
    api_id: int
    api_hash_encrypted: str
    session_encrypted: str
    locked: bool
    heartbeat_fresh_for: float = 0.0


async def runnable_trackers(connection: Connection, takeover_delay: float = 0.0) -> list[RunnableTracker]:
    """Every tracker that should have a worker, with whether its lock is held and how fresh its heartbeat is."""
    rows = await connection.fetch(RUNNABLE_TRACKERS, TRACKER_LOCK_SPACE, float(takeover_delay))
    return [
        RunnableTracker(
            row["id"],
            row["api_id"],
            row["api_hash_encrypted"],
            row["session_encrypted"],
            row["locked"],
            row["heartbeat_fresh_for"],
        )
        for row in rows
    ]


async def next_flood_wait_end(connection: Connection) -> datetime.datetime | None:
    """When the earliest current flood wait ends (its tracker becomes runnable again)."""
    value: datetime.datetime | None = await connection.fetchval(NEXT_FLOOD_WAIT_END)
    return value


async def clear_stale_fatal(connection: Connection) -> list[int]:
    """Move FATAL trackers whose rows changed since back to ``stopped`` and give them waiting targets."""
    stale = [row[0] for row in await connection.fetch(STALE_FATAL)]
    if not stale:
        return []
    async with connection.transaction():
        await connection.execute("SELECT so_begin_rebalance()")
        cleared = [row[0] for row in await connection.fetch(CLEAR_FATAL, stale)]
        if cleared:
            await connection.execute("SELECT so_pickup_waiting()")
    return cleared


async def mark_fatal(connection: Connection, tracker_id: int, error: str) -> bool:
    """Record FATAL and move the tracker's targets away, unless it stopped being runnable meanwhile."""
    async with connection.transaction():
        await connection.execute("SELECT so_begin_rebalance()")
        if not await connection.fetchval(STILL_RUNNABLE, tracker_id):
            return False
        await connection.execute(MARK_FATAL, tracker_id, error)
        await connection.execute("SELECT so_rebalance_tracker($1)", tracker_id)
    return True

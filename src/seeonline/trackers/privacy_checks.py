"""Privacy checks asked of a tracker's worker: the API records the request, NOTIFYs, and reads the answer.

The API never opens a tracker's session: ``tracker_privacy_checks`` is the truth (a request bumps
``requested_seq``; the worker writes ``done_seq`` with its result), the NOTIFY only wakes the worker.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg

from seeonline.api.errors import not_found
from seeonline.database.channels import CHANNEL_PRIVACY
from seeonline.database.pool import Connection, in_transaction
from seeonline.health import HealthState
from seeonline.logging import get_logger

log = get_logger(__name__)

# A running worker answers within a second or two; after this the request stays pending (202).
ANSWER_WAIT = 10.0
POLL_INTERVAL = 0.2
# A worker whose heartbeat is older than this is not waited for.
ALIVE_WITHIN = "30 seconds"

REQUEST = """
INSERT INTO tracker_privacy_checks (tracker_account_id, requested_seq, fix_requested, requested_at)
VALUES ($1, 1, $2, now())
ON CONFLICT (tracker_account_id) DO UPDATE SET
    requested_seq = tracker_privacy_checks.requested_seq + 1,
    fix_requested = tracker_privacy_checks.fix_requested OR EXCLUDED.fix_requested,
    requested_at = EXCLUDED.requested_at
RETURNING requested_seq
"""

WORKER_ALIVE = f"""
SELECT EXISTS (
    SELECT 1 FROM tracker_health
    WHERE tracker_account_id = $1 AND state IN ('{HealthState.OK}', '{HealthState.PRIVACY_MISCONFIGURED}')
      AND last_heartbeat_at > now() - interval '{ALIVE_WITHIN}'
)
"""

RENDER = """
SELECT json_build_object(
    'tracker_account_id', c.tracker_account_id,
    'state', CASE WHEN c.done_seq >= c.requested_seq THEN 'done' ELSE 'pending' END,
    'fix_requested', c.fix_requested, 'privacy_ok', c.privacy_ok, 'fixed', c.fixed, 'detail', c.detail,
    'requested_at', c.requested_at, 'checked_at', c.checked_at)::text, c.done_seq
FROM tracker_privacy_checks c WHERE c.tracker_account_id = $1
"""


async def request_check(pool: asyncpg.Pool, tracker_id: int, *, fix: bool) -> int:
    """Record a request (404 for an unknown tracker) and wake the tracker's worker; returns its sequence number."""

    async def work(connection: Connection) -> int:
        if not await connection.fetchval("SELECT true FROM tracker_accounts WHERE id = $1 FOR SHARE", tracker_id):
            raise not_found("TrackerAccount")
        seq: int = await connection.fetchval(REQUEST, tracker_id, fix)
        await connection.execute("SELECT pg_notify($1, $2)", CHANNEL_PRIVACY, str(tracker_id))
        return seq

    seq = await in_transaction(pool, work)
    log.info("tracker_privacy_check_requested", tracker_account_id=tracker_id, fix=fix)
    return seq


async def answer(pool: asyncpg.Pool, tracker_id: int, seq: int | None = None) -> tuple[str, bool]:
    """The check's JSON and whether it is done; with ``seq``, waits a little for a live worker to answer it."""
    deadline = time.monotonic() + ANSWER_WAIT
    wait = seq is not None and bool(await pool.fetchval(WORKER_ALIVE, tracker_id))
    while True:
        row = await pool.fetchrow(RENDER, tracker_id)
        if row is None:
            raise not_found("TrackerPrivacyCheck")
        done = seq is None or row[1] >= seq
        if done or not wait or time.monotonic() >= deadline:
            return row[0], done
        await asyncio.sleep(POLL_INTERVAL)

"""The worker's control connection: the tracker's advisory lock, LISTEN for its targets, and its SQL.

One connection holds ``pg_try_advisory_lock(TRACKER_LOCK_SPACE, tracker id)`` for the worker's life,
listens on CHANNEL_TARGETS (ids only) and runs the worker's few queries (serialized: an asyncpg
connection runs one query at a time). If it drops, the lock is gone with it: ``connect`` takes it
again or raises ``LockHeldError`` when another worker got it meanwhile.

The lock is a lease on the Telegram session, with a grace period (see ``supervisor.worker.tracker``). A silent
network partition must be noticed here before Postgres notices it and frees the lock for another
host, so the server side gets TCP keepalives (≈ 25 s to declare us dead, ``LEASE_SERVER_SETTINGS``)
while the worker probes every few seconds with a short timeout and treats any failure or timeout
as a loss.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from seeonline.choices import sql_list
from seeonline.database.channels import CHANNEL_PRIVACY, CHANNEL_TARGETS, TRACKER_LOCK_SPACE
from seeonline.database.errors import DATABASE_ERRORS
from seeonline.database.maintenance import move_unresolved
from seeonline.health import NEVER_RUN_STATES, RETIRED_STATES, RUNNING_STATES, UNUSABLE_STATES, HealthState
from seeonline.logging import get_logger
from seeonline_supervisor.worker.uptime import RECORD_UPTIME

log = get_logger("supervisor.worker.control")


# The backend side of the lock connection: Postgres drops (and unlocks) a silent peer after ≈ 25-30 s.
LEASE_SERVER_SETTINGS = {
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
    "tcp_user_timeout": "30000",
}
LOCK_CONNECT_TIMEOUT = 10.0  # one connect attempt of the lock connection, unless the lease's grace ends sooner
# Well under the server's ≈ 25 s, so a partition is noticed here first (the probe and every query time out).
COMMAND_TIMEOUT = 10.0

# Errors meaning "Postgres cannot be reached right now" (not a bug in the worker or the schema).
UNREACHABLE_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,  # class 53, e.g. too many connections: wait, do not crash
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)


class LockHeldError(Exception):
    """Another worker holds this tracker's advisory lock."""


@dataclass(frozen=True)
class TrackerRow:
    """What the worker needs of its tracker account (secrets still encrypted)."""

    telegram_id: int
    api_id: int
    api_hash_encrypted: str
    session_encrypted: str | None
    is_active: bool
    is_auth: bool
    health: str | None
    enrolment_paused_until: datetime | None


@dataclass(frozen=True)
class TargetRow:
    """A target assigned to this tracker, with this tracker's resolved peer if any."""

    target_id: int
    username: str
    visibility: str
    last_is_online: bool | None
    last_status_at: datetime | None
    online_expires_at: datetime | None
    user_id: int | None
    access_hash: int | None


LOAD_TRACKER = """
SELECT a.telegram_id, a.api_id, a.api_hash_encrypted, s.session_encrypted, a.is_active, a.is_auth, h.state AS health,
       h.enrolment_paused_until
FROM tracker_accounts a
LEFT JOIN tracker_settings s ON s.tracker_account_id = a.id
LEFT JOIN tracker_health h ON h.tracker_account_id = a.id
WHERE a.id = $1
"""

LOAD_TARGETS = """
SELECT t.id AS target_id, t.username, t.visibility, t.last_is_online, t.last_status_at, t.online_expires_at,
       p.user_id, p.access_hash
FROM targets t
LEFT JOIN tracker_peers p ON p.target_id = t.id AND p.tracker_account_id = t.tracker_account_id
WHERE t.tracker_account_id = $1
ORDER BY t.id
"""

SAVE_PEER = """
WITH peer AS (
    INSERT INTO tracker_peers (tracker_account_id, target_id, user_id, access_hash) VALUES ($1, $2, $3, $4)
    ON CONFLICT (tracker_account_id, target_id)
    DO UPDATE SET user_id = EXCLUDED.user_id, access_hash = EXCLUDED.access_hash, resolved_at = now()
    RETURNING target_id
)
UPDATE targets SET telegram_id = $3 WHERE id = (SELECT target_id FROM peer) AND telegram_id IS DISTINCT FROM $3
"""

UPSERT_HEALTH = """
INSERT INTO tracker_health (tracker_account_id, state, state_until, last_heartbeat_at, last_error)
VALUES ($1, $2, $3, now(), $4)
ON CONFLICT (tracker_account_id) DO UPDATE SET
    state = EXCLUDED.state, state_until = EXCLUDED.state_until,
    last_heartbeat_at = EXCLUDED.last_heartbeat_at, last_error = EXCLUDED.last_error
"""

HEARTBEAT = f"""
INSERT INTO tracker_health (tracker_account_id, state, last_heartbeat_at, last_error, enrolment_paused_until)
VALUES ($1, $2, now(), $3, $4)
ON CONFLICT (tracker_account_id) DO UPDATE SET last_heartbeat_at = now(), state = EXCLUDED.state,
    last_error = EXCLUDED.last_error, enrolment_paused_until = EXCLUDED.enrolment_paused_until
WHERE tracker_health.state NOT IN ({sql_list(RETIRED_STATES | NEVER_RUN_STATES)})
"""

# A clean stop shows as stopped, unless a state that explains why the tracker cannot run is kept.
MARK_STOPPED = f"""
UPDATE tracker_health SET state = '{HealthState.STOPPED}', state_until = NULL
WHERE tracker_account_id = $1 AND state IN ({sql_list(RUNNING_STATES - UNUSABLE_STATES)})
"""

MARK_ENROLLED = """
UPDATE targets SET enrolled_at = now()
WHERE id = ANY ($1::bigint[]) AND tracker_account_id = $2 AND enrolled_at IS NULL
"""

# Done: the target is gone, or another tracker watches it. A target waiting for capacity stays ours to
# watch (until the handover's time limit) since nobody else does.
HANDED_OVER = """
SELECT i FROM unnest($1::bigint[]) AS i
WHERE NOT EXISTS (
    SELECT 1 FROM targets t
    WHERE t.id = i AND (t.tracker_account_id IS NULL OR t.tracker_account_id = $2 OR t.enrolled_at IS NULL)
)
"""

PENDING_PRIVACY_CHECK = """
SELECT requested_seq, fix_requested FROM tracker_privacy_checks
WHERE tracker_account_id = $1 AND requested_seq > done_seq
"""

# done_seq never goes back; the fix request is cleared only if no newer request arrived meanwhile.
RECORD_PRIVACY_CHECK = """
INSERT INTO tracker_privacy_checks (tracker_account_id, done_seq, checked_at, privacy_ok, fixed, detail)
VALUES ($1, $2, now(), $3, $4, $5)
ON CONFLICT (tracker_account_id) DO UPDATE SET
    done_seq = greatest(tracker_privacy_checks.done_seq, EXCLUDED.done_seq),
    fix_requested = tracker_privacy_checks.fix_requested AND tracker_privacy_checks.requested_seq > EXCLUDED.done_seq,
    checked_at = EXCLUDED.checked_at, privacy_ok = EXCLUDED.privacy_ok, fixed = EXCLUDED.fixed,
    detail = EXCLUDED.detail
"""


class ControlDb:
    """The lock-holding, listening, query-running connection of one worker."""

    def __init__(
        self,
        dsn: str,
        tracker_id: int,
        *,
        on_targets_changed: Callable[[], None],
        on_privacy_requested: Callable[[], None] | None = None,
    ) -> None:
        self.dsn = dsn
        self.tracker_id = tracker_id
        self.on_targets_changed = on_targets_changed
        self.on_privacy_requested = on_privacy_requested
        self.lost = asyncio.Event()
        self._connection: asyncpg.Connection[Any] | None = None
        self._busy = asyncio.Lock()

    @property
    def connected(self) -> bool:
        """Whether the connection (and so the lock) is alive as far as we know."""
        return self._connection is not None and not self._connection.is_closed() and not self.lost.is_set()

    async def connect(self, timeout: float = LOCK_CONNECT_TIMEOUT) -> None:  # noqa: ASYNC109 - asyncpg's own
        """Connect, take the tracker's lock (``LockHeldError`` if taken) and LISTEN for target changes."""
        connection: asyncpg.Connection[Any] = await asyncpg.connect(
            self.dsn, timeout=timeout, command_timeout=COMMAND_TIMEOUT, server_settings=LEASE_SERVER_SETTINGS
        )
        try:
            locked = await connection.fetchval(
                "SELECT pg_try_advisory_lock($1, $2)", TRACKER_LOCK_SPACE, self.tracker_id
            )
            if not locked:
                raise LockHeldError(self.tracker_id)
            await connection.add_listener(CHANNEL_TARGETS, self._on_notify)
            await connection.add_listener(CHANNEL_PRIVACY, self._on_privacy_notify)
        except BaseException:
            connection.terminate()
            raise
        connection.add_termination_listener(self._on_terminated)
        self._connection = connection
        self.lost.clear()

    async def close(self) -> None:
        """Close the connection, releasing the lock."""
        connection, self._connection = self._connection, None
        if connection is None or connection.is_closed():
            return
        connection.remove_termination_listener(self._on_terminated)
        if self.lost.is_set():
            connection.terminate()  # deemed dead (a failed probe): a graceful close would only wait
            return
        try:
            await asyncio.wait_for(connection.close(), 3)
        except DATABASE_ERRORS:
            connection.terminate()
        except asyncio.CancelledError:
            connection.terminate()  # the lock goes with it; the cancellation goes on
            raise

    def _on_notify(self, _connection: Any, _pid: int, _channel: str, payload: object) -> None:
        if str(payload) == str(self.tracker_id):
            self.on_targets_changed()

    def _on_privacy_notify(self, _connection: Any, _pid: int, _channel: str, payload: object) -> None:
        if str(payload) == str(self.tracker_id) and self.on_privacy_requested is not None:
            self.on_privacy_requested()

    def _on_terminated(self, _connection: Any) -> None:
        self.lost.set()

    @contextlib.asynccontextmanager
    async def _use(self) -> Any:
        async with self._busy:
            connection = self._connection
            if connection is None or connection.is_closed():
                self.lost.set()
                msg = "control connection is down"
                raise ConnectionError(msg)
            try:
                yield connection
            except (OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.exceptions.ConnectionDoesNotExistError):
                # A timeout may be a silent partition: the lock can no longer be trusted.
                self.lost.set()
                raise

    async def probe(self, within: float) -> bool:
        """Check the connection with ``SELECT 1``; any failure or timeout marks it lost. False when lost.

        Skipped while a query runs: that query has its own timeout and marks the loss the same way.
        """
        if self.lost.is_set():
            return False
        if self._busy.locked():
            return True
        try:
            async with self._use() as connection:
                await connection.fetchval("SELECT 1", timeout=within)
        except DATABASE_ERRORS:
            self.lost.set()
            return False
        return True

    # --- queries ------------------------------------------------------------------------------

    async def load_tracker(self) -> TrackerRow | None:
        """The tracker's account, setting and health; None when it no longer exists."""
        async with self._use() as connection:
            row = await connection.fetchrow(LOAD_TRACKER, self.tracker_id)
        return None if row is None else TrackerRow(**dict(row))

    async def load_targets(self) -> list[TargetRow]:
        """Every target assigned to this tracker, with this tracker's peers."""
        async with self._use() as connection:
            rows = await connection.fetch(LOAD_TARGETS, self.tracker_id)
        return [TargetRow(**dict(r)) for r in rows]

    async def save_peer(self, target_id: int, user_id: int, access_hash: int) -> None:
        """Persist a resolution so no restart of this tracker resolves the username again."""
        async with self._use() as connection:
            await connection.execute(SAVE_PEER, self.tracker_id, target_id, user_id, access_hash)

    async def mark_enrolled(self, target_ids: list[int]) -> None:
        """These targets of this tracker are watched now: a tracker they left may stop watching them."""
        async with self._use() as connection:
            await connection.execute(MARK_ENROLLED, target_ids, self.tracker_id)

    async def handed_over(self, target_ids: list[int]) -> set[int]:
        """Of targets that left this tracker, those now watched elsewhere, waiting, or gone."""
        async with self._use() as connection:
            rows = await connection.fetch(HANDED_OVER, target_ids, self.tracker_id)
        return {int(row[0]) for row in rows}

    async def forget_peer(self, target_id: int) -> None:
        """Drop a peer Telegram no longer accepts (it will be resolved again)."""
        async with self._use() as connection:
            await connection.execute(
                "DELETE FROM tracker_peers WHERE tracker_account_id = $1 AND target_id = $2", self.tracker_id, target_id
            )

    async def heartbeat(
        self, state: str, error: str | None = None, *, enrolment_paused_until: datetime | None = None
    ) -> bool:
        """Record that the worker is alive, in ``state`` (never overrides a state that stops the tracker).

        Returns whether ``last_heartbeat_at`` was written (not when a stopping state is kept).
        """
        async with self._use() as connection:
            status: str = await connection.execute(HEARTBEAT, self.tracker_id, state, error, enrolment_paused_until)
        return status.endswith(" 1")

    async def record_uptime(self, started: datetime, seen: datetime, ended: bool) -> None:
        """Record that the worker was connected to Telegram from ``started`` until ``seen`` (see ``uptime``)."""
        async with self._use() as connection:
            await connection.execute(RECORD_UPTIME, self.tracker_id, started, seen, ended)

    async def move_unresolved(self, pause_over: float) -> int:
        """Hand targets this tracker cannot resolve for longer than ``pause_over`` s to enrolling trackers."""
        async with self._use() as connection:
            return await move_unresolved(connection, pause_over)

    async def set_health(
        self, state: str, *, until: datetime | None = None, error: str | None = None, was: str | None = None
    ) -> int:
        """Change the tracker's health; entering or leaving an unusable state rebalances in the same transaction.

        Returns how many targets the drain moved away.
        """
        # Entering or leaving a state the slot engine cannot use drains or refills in the same transaction.
        rebalance = state in UNUSABLE_STATES or (was or HealthState.OK) in {*UNUSABLE_STATES, HealthState.FATAL}
        async with self._use() as connection, connection.transaction():
            if rebalance:
                await connection.execute("SELECT so_begin_rebalance()")
            await connection.execute(UPSERT_HEALTH, self.tracker_id, state, until, error)
            if state == "auth_lost":
                await connection.execute("UPDATE tracker_accounts SET is_auth = false WHERE id = $1", self.tracker_id)
            if rebalance:
                return int(await connection.fetchval("SELECT so_rebalance_tracker($1)", self.tracker_id))
            await connection.execute("SELECT so_pickup_waiting()")
        return 0

    async def pending_privacy_check(self) -> tuple[int, bool] | None:
        """The newest unanswered privacy-check request: (its sequence number, whether to fix), or None."""
        async with self._use() as connection:
            row = await connection.fetchrow(PENDING_PRIVACY_CHECK, self.tracker_id)
        return None if row is None else (int(row[0]), bool(row[1]))

    async def record_privacy_check(self, seq: int, *, ok: bool, fixed: bool, detail: str) -> None:
        """Store a check's result, answering every request up to ``seq`` (0: an unrequested check)."""
        async with self._use() as connection:
            await connection.execute(RECORD_PRIVACY_CHECK, self.tracker_id, seq, ok, fixed, detail)

    async def mark_stopped(self) -> None:
        """On a clean stop, show the tracker as stopped unless a worse state explains why.

        privacy_misconfigured stays: it is still true, and ``stopped`` would make the tracker usable.
        """
        async with self._use() as connection:
            await connection.execute(MARK_STOPPED, self.tracker_id)

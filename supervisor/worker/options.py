"""The worker's tunables and exit codes (the supervisor reads the codes)."""

from __future__ import annotations

import msgspec

from supervisor.process import EXIT_LOCK_HELD

EXIT_OK = 0  # stopped on request (SIGTERM/SIGINT) after flushing
EXIT_CRASHED = 1  # an unexpected error; the supervisor restarts with backoff
EXIT_RETIRED = 4  # cannot run now (auth lost, banned, flood wait, gone, no session, Postgres unreachable): no crash

__all__ = ["EXIT_CRASHED", "EXIT_LOCK_HELD", "EXIT_OK", "EXIT_RETIRED", "WorkerOptions"]


class WorkerOptions(msgspec.Struct, frozen=True, kw_only=True):
    """Timings of one worker; the defaults suit production, tests shorten them."""

    # tracker_health.last_heartbeat_at, written while the lock is held. A supervisor elsewhere waits until the
    # heartbeat is older than its takeover_delay (> heartbeat_interval + lease_grace) before taking the tracker over.
    heartbeat_interval: float = 5.0
    resync_interval: float = 120.0  # contacts.getStatuses besides every (re)connect: re-checks hidden targets
    resolve_interval: float = 5.0  # spacing between contacts.resolveUsername calls (the most flood-limited)
    contact_interval: float = 0.2  # spacing between contacts.addContact calls
    short_flood_wait: float = 30.0  # flood waits up to this long are slept through; longer ones retire the tracker
    not_found_retry: float = 3600.0  # re-resolve a username that did not exist after this long
    call_retry_base: float = 5.0  # after an unexpected Telegram error for a target (or a resync), retry after this
    call_retry_max: float = 600.0  # ... doubling per consecutive failure up to this
    retire_grace: float = 15.0  # after retiring, wait this long for the supervisor's SIGTERM, then exit
    flush_timeout: float = 8.0  # on stop, how long to keep trying to write buffered transitions
    reconnect_max: float = 10.0  # cap of the backoff between Telegram/Postgres reconnect attempts
    lock_probe_interval: float = 3.0  # how often the lock connection is probed (a silent partition ends the lease)
    lock_probe_timeout: float = 5.0  # a probe slower than this counts as a lost lock
    # After losing the lock, Telegram stays connected (transitions buffered) this long while the lock is re-taken;
    # at most until the last heartbeat + heartbeat_interval + lease_grace (see supervisor.trackers).
    lease_grace: float = 10.0
    reconcile_interval: float | None = None  # None: the setting SEEONLINE_RECONCILE_INTERVAL
    ingest_linger: float = 0.005  # the status writer's batching pause
    privacy_interval: float = 3600.0  # re-check the tracker's own last-seen rule this often (and at start, on request)
    privacy_symptom_spacing: float = 60.0  # a target seen with by_me triggers a check at most this often

"""The worker's tunables; the defaults suit production, tests shorten them."""

from __future__ import annotations

import msgspec

from seeonline_supervisor.handover import HANDOVER_MAX


class WorkerOptions(msgspec.Struct, frozen=True, kw_only=True):
    """Timings of one worker; the defaults suit production, tests shorten them."""

    # The lease on the Telegram session (heartbeat interval, grace) comes from Settings.lease: supervisors derive
    # their takeover delay from the same struct (seeonline.lease).
    resync_interval: float = 120.0  # contacts.getStatuses besides every (re)connect: re-checks hidden targets
    resolve_interval: float = 5.0  # spacing between contacts.resolveUsername calls (the most flood-limited)
    contact_interval: float = 0.2  # spacing between contacts.addContact calls
    short_flood_wait: float = 30.0  # flood waits up to this long are slept through; longer ones retire the tracker
    not_found_retry: float = 3600.0  # re-resolve a username that did not exist after this long
    call_retry_base: float = 5.0  # after an unexpected Telegram error for a target (or a resync), retry after this
    call_retry_max: float = 600.0  # ... doubling per consecutive failure up to this
    retire_grace: float = 15.0  # after retiring, wait this long for the supervisor's SIGTERM, then exit
    # On stop, the budget for disconnecting and writing what is buffered; below ProcessOptions.stop_grace (10 s).
    flush_timeout: float = 8.0
    reconnect_max: float = 10.0  # cap of the backoff between reconnect attempts (after the lease's grace)
    lock_probe_interval: float = 3.0  # how often the lock connection is probed (a silent partition ends the lease)
    lock_probe_timeout: float = 5.0  # a probe slower than this counts as a lost lock
    # A target that moved to another tracker stays watched here until the new one has it (make before
    # break), at most this long; whether it has is checked this often. Also bounds a drain (supervisor.handover).
    handover_max: float = HANDOVER_MAX
    handover_poll: float = 2.0
    call_timeout: float = 30.0  # any one Telegram call
    resync_retry_max: float = 60.0  # cap of the backoff after failed contacts.getStatuses calls
    unreachable_after: float = 30.0  # health: connecting -> telegram_unreachable after this long without Telegram
    resync_stuck_after: float = 60.0  # health: resync_stuck when a resync asked for is not done after this long
    writer_failing_after: float = 10.0  # health: writer_failing when nothing could be written for this long
    reconcile_interval: float | None = None  # None: the setting SEEONLINE_RECONCILE_INTERVAL
    ingest_linger: float = 0.005  # the status writer's batching pause
    privacy_interval: float = 3600.0  # re-check the tracker's own last-seen rule this often (and at start, on request)
    privacy_symptom_spacing: float = 60.0  # a target seen with by_me triggers a check at most this often

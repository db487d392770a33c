"""The lease a tracker worker holds on its Telegram session, and the takeover delay derived from it.

Two connections of one Telegram session kill it (``AUTH_KEY_DUPLICATED``), so a tracker runs where its
worker holds the tracker's advisory lock. A worker cut off from Postgres cannot tell "Postgres is down
for everyone" from "I am partitioned and another host may take over", so it keeps Telegram connected
(buffering what it observes) for ``grace`` seconds while it re-takes the lock, never past its last
written heartbeat + ``heartbeat_interval`` + ``grace``. Supervisors elsewhere do not start a tracker
whose heartbeat is younger than ``takeover_delay``; deriving both from one setting
(``SEEONLINE_LEASE_GRACE``) is what keeps them consistent.

The trade-off: a Postgres outage (restart, failover) of up to ``grace`` seconds loses no status
change (a managed failover takes 30-60 s); a dead host's trackers are taken over ``takeover_delay``
(+ about a second) after their last heartbeat: 82 s with the default grace of 70 s.
"""

from __future__ import annotations

import msgspec

DEFAULT_GRACE = 70.0
HEARTBEAT_INTERVAL = 5.0
TELEGRAM_DISCONNECT_TIMEOUT = 5.0  # how long a worker waits for its Telegram client to disconnect
# What a worker still does after its grace ends (disconnect Telegram), plus scheduling slack.
RELEASE_MARGIN = TELEGRAM_DISCONNECT_TIMEOUT + 2.0


class Lease(msgspec.Struct, frozen=True, kw_only=True):
    """Timings of a worker's lease on its Telegram session (tests shorten them)."""

    grace: float = DEFAULT_GRACE
    heartbeat_interval: float = HEARTBEAT_INTERVAL

    @property
    def takeover_delay(self) -> float:
        """How old another host's last heartbeat must be before its tracker is started here."""
        return self.heartbeat_interval + self.grace + RELEASE_MARGIN

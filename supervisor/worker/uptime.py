"""When this worker was connected to Telegram, for history's known and unknown time (``tracker_uptimes``).

Each connected period is keyed by when it began; every heartbeat says "still connected" (or, once, when
it ended), so a heartbeat lost to a database outage leaves no hole once a later one gets through. A worker
that dies leaves its last heartbeat as the period's end (``so_history_pieces`` reads it so).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

RECORD_UPTIME = "SELECT so_record_uptime($1, $2, $3, $4)"

Record = Callable[[datetime, datetime, bool], Awaitable[None]]


class UptimeLog:
    """Connected periods seen by the Telegram link, written out with the heartbeats."""

    def __init__(self) -> None:
        self.since: datetime | None = None  # the current connected period began
        self.finished: list[tuple[datetime, datetime]] = []  # ended periods not written yet

    def connected(self) -> None:
        """The link connected."""
        if self.since is None:
            self.since = datetime.now(UTC)

    def disconnected(self) -> None:
        """The link lost Telegram (or let go of it)."""
        if self.since is not None:
            self.finished.append((self.since, datetime.now(UTC)))
            self.since = None

    async def record(self, write: Record) -> None:
        """Write what is pending: ended periods first (each once), then the current one as of now."""
        while self.finished:
            started, ended = self.finished[0]
            await write(started, ended, True)
            self.finished.pop(0)
        if self.since is not None:
            await write(self.since, datetime.now(UTC), False)

"""The worker's connected periods: each ended period written once, kept until a write succeeds."""

from __future__ import annotations

from datetime import datetime

import pytest

from seeonline_supervisor.worker.uptime import UptimeLog


async def test_periods_are_written_with_heartbeats_and_kept_across_failed_writes() -> None:
    log = UptimeLog()
    written: list[tuple[datetime, datetime, bool]] = []
    failing = True

    async def write(started: datetime, seen: datetime, ended: bool) -> None:
        if failing:
            raise ConnectionError
        written.append((started, seen, ended))

    log.connected()
    first = log.since
    log.disconnected()
    log.connected()
    with pytest.raises(ConnectionError):
        await log.record(write)  # the database is away: nothing is lost
    failing = False
    await log.record(write)
    assert written[0][0] == first
    assert written[0][2] is True  # the ended period, once
    assert written[1][0] == log.since
    assert written[1][2] is False  # the current one, as of now
    await log.record(write)
    assert [entry[2] for entry in written] == [True, False, False]
    assert written[2][1] >= written[1][1]

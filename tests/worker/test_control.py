"""The worker's control connection on its own: closing it under cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import Any, TypeAlias

import asyncpg

from seeonline.settings import Settings
from seeonline_supervisor.worker.control import ControlDb
from tests.polling import wait_until

Connection: TypeAlias = "asyncpg.Connection[Any]"


async def test_a_cancelled_close_still_terminates_and_stays_cancelled(settings: Settings, db: Connection) -> None:
    tracker_id = 4242
    control = ControlDb(settings.asyncpg_dsn, tracker_id, on_targets_changed=lambda: None)
    await control.connect()
    connection = control._connection
    assert connection is not None
    backend = connection.get_server_pid()
    os.kill(backend, signal.SIGSTOP)  # a graceful close now waits for an answer that does not come
    try:
        closing = asyncio.create_task(control.close())
        await asyncio.sleep(0.1)  # let it start waiting (the close would wait 3 s)
        assert not closing.done()
        closing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await closing
        assert closing.cancelled(), "close() swallowed the cancellation"
        assert connection.is_closed()
    finally:
        os.kill(backend, signal.SIGCONT)

    async def unlocked() -> bool:
        return bool(await db.fetchval("SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)", backend))

    await wait_until(unlocked)

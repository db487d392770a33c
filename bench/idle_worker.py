"""Stand-in tracker worker for bench/workers.py: holds the lock and a connected Telethon client, idle.

Kept apart from the benchmark so a worker imports nothing the forkserver has not preloaded.
"""

from __future__ import annotations

import asyncio
import signal

import asyncpg

from seeonline.database.channels import TRACKER_LOCK_SPACE
from seeonline.settings import Settings
from seeonline.telegram.client import build_client
from seeonline_supervisor.credentials import WorkerCredentials


def idle_worker(tracker_id: int, settings: Settings, credentials: WorkerCredentials | None) -> int:
    """Take the tracker's lock, connect its Telethon client (credentials from the supervisor), wait for SIGTERM."""
    assert credentials is not None
    return asyncio.run(_idle(tracker_id, settings, credentials))


async def _idle(tracker_id: int, settings: Settings, credentials: WorkerCredentials) -> int:
    connection = await asyncpg.connect(settings.asyncpg_dsn)
    if not await connection.fetchval("SELECT pg_try_advisory_lock($1, $2)", TRACKER_LOCK_SPACE, tracker_id):
        return 3
    client = build_client(credentials.session, credentials.api_id, credentials.api_hash)
    await client.connect()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await client.disconnect()
    await connection.close()
    return 0

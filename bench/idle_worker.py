"""Stand-in tracker worker for bench/workers.py: holds the lock and a connected Telethon client, idle.

Kept apart from the benchmark so a worker imports nothing the forkserver has not preloaded.
"""

from __future__ import annotations

import asyncio
import signal

import asyncpg

from seeonline import secrets as crypto
from seeonline.database.channels import TRACKER_LOCK_SPACE
from seeonline.settings import Settings
from seeonline.telegram.client import build_client


def idle_worker(tracker_id: int, settings: Settings) -> int:
    """Take the tracker's lock, connect its Telethon client, wait for SIGTERM."""
    return asyncio.run(_idle(tracker_id, settings))


async def _idle(tracker_id: int, settings: Settings) -> int:
    connection = await asyncpg.connect(settings.asyncpg_dsn)
    if not await connection.fetchval("SELECT pg_try_advisory_lock($1, $2)", TRACKER_LOCK_SPACE, tracker_id):
        return 3
    row = await connection.fetchrow(
        "SELECT a.api_id, a.api_hash_encrypted, s.session_encrypted FROM tracker_accounts a "
        "JOIN tracker_settings s ON s.tracker_account_id = a.id WHERE a.id = $1",
        tracker_id,
    )
    assert settings.secret_key is not None and row is not None
    client = build_client(
        crypto.decrypt(settings.secret_key, row["session_encrypted"]),
        row["api_id"],
        crypto.decrypt(settings.secret_key, row["api_hash_encrypted"]),
    )
    await client.connect()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await client.disconnect()
    await connection.close()
    return 0

"""PgListener: notifications, resync after connect, reconnect after a Postgres restart."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from seeonline_supervisor.listener import PgListener
from tests.support.postgres import PostgresServer

CHANNEL = "test_listener_channel"


async def _wait_for(predicate: Any, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached before the deadline")
        await asyncio.sleep(0.02)


async def test_listener_delivers_notifications_and_resyncs_on_connect(
    database_url: str, db: asyncpg.Connection[Any]
) -> None:
    received: list[tuple[str, str]] = []
    resyncs: list[int] = []

    async def resync() -> None:
        resyncs.append(1)

    listener = PgListener(database_url, [CHANNEL], on_notify=lambda c, p: received.append((c, p)), on_connect=resync)
    task = asyncio.create_task(listener.run())
    await asyncio.wait_for(listener.connected.wait(), 10)
    assert resyncs == [1]
    await db.execute(f"SELECT pg_notify('{CHANNEL}', '42')")
    await _wait_for(lambda: received == [(CHANNEL, "42")])
    await listener.stop()
    await asyncio.wait_for(task, 5)
    assert not listener.connected.is_set()


async def test_listener_reconnects_and_resyncs_after_backend_is_killed(
    database_url: str, db: asyncpg.Connection[Any]
) -> None:
    received: list[str] = []
    resyncs: list[int] = []

    async def resync() -> None:
        resyncs.append(1)

    listener = PgListener(database_url, [CHANNEL], on_notify=lambda _c, p: received.append(p), on_connect=resync)
    task = asyncio.create_task(listener.run())
    await asyncio.wait_for(listener.connected.wait(), 10)
    killed = await db.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    assert killed >= 1
    await _wait_for(lambda: len(resyncs) == 2 and listener.connected.is_set())
    assert listener.reconnects == 1
    await db.execute(f"SELECT pg_notify('{CHANNEL}', 'after')")
    await _wait_for(lambda: received == ["after"])
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_listener_retries_a_failing_resync(database_url: str) -> None:
    attempts: list[int] = []

    async def flaky() -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise OSError("resync failed")

    listener = PgListener(database_url, [CHANNEL], on_notify=lambda _c, _p: None, on_connect=flaky)
    task = asyncio.create_task(listener.run())
    await asyncio.wait_for(listener.connected.wait(), 10)
    assert len(attempts) == 3
    await listener.stop()
    await task


async def test_listener_survives_a_postgres_restart(postgres_server: PostgresServer, database_url: str) -> None:
    server = postgres_server.require_embedded()
    received: list[str] = []
    resyncs: list[int] = []

    async def resync() -> None:
        resyncs.append(1)

    listener = PgListener(database_url, [CHANNEL], on_notify=lambda _c, p: received.append(p), on_connect=resync)
    task = asyncio.create_task(listener.run())
    await asyncio.wait_for(listener.connected.wait(), 10)
    # On the main thread: the server's parent-death signal is tied to the thread that starts it.
    server.restart()
    await _wait_for(lambda: len(resyncs) >= 2 and listener.connected.is_set())
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(f"SELECT pg_notify('{CHANNEL}', 'back')")
    finally:
        await connection.close()
    await _wait_for(lambda: "back" in received)
    await listener.stop()
    await task

"""The API's asyncpg pool and the few ways handlers talk to Postgres."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias, TypeVar

import asyncpg

from seeonline.database.errors import RETRYABLE_SQLSTATES
from seeonline.logging import get_logger

log = get_logger(__name__)

T = TypeVar("T")
# What handlers receive: a pooled connection (a proxy with the Connection API).
Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"

MAX_ATTEMPTS = 5
STREAM_CHUNK_BYTES = 64 * 1024


async def _init_connection(connection: asyncpg.Connection) -> None:
    # JSON built by Postgres arrives as text; we pass it through untouched.
    await connection.set_type_codec("json", encoder=str, decoder=str, schema="pg_catalog")


async def _keep_session(_connection: asyncpg.Connection) -> None:
    # asyncpg's default reset sends "SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL"
    # on every release: a second round trip per request. The pool still rolls back an open transaction
    # and drops listeners; the API creates no other session state (no SET, LISTEN, session-level
    # advisory locks or WITH HOLD cursors on pooled connections).
    return


async def create_pool(dsn: str, *, size: int) -> asyncpg.Pool:
    """A pool whose sessions render timestamps in UTC (ISO 8601 with ``+00:00``)."""
    pool: asyncpg.Pool = await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=size,
        server_settings=SERVER_SETTINGS,
        init=_init_connection,
        reset=_keep_session,
    )
    return pool


async def with_retry(pool: asyncpg.Pool, work: Callable[[Connection], Awaitable[T]]) -> T:
    """Run ``work`` on a pooled connection, repeating it after a deadlock or serialization failure."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            async with pool.acquire() as connection:
                return await work(connection)
        except asyncpg.PostgresError as exc:
            if getattr(exc, "sqlstate", None) not in RETRYABLE_SQLSTATES or attempt == MAX_ATTEMPTS:
                raise
            log.info("transaction_retry", sqlstate=exc.sqlstate, attempt=attempt)
            await asyncio.sleep(0.005 * attempt)
    msg = "unreachable"
    raise AssertionError(msg)


async def in_transaction(pool: asyncpg.Pool, work: Callable[[Connection], Awaitable[T]]) -> T:
    """Run ``work`` inside one transaction, retried as a whole on deadlock."""

    async def transactional(connection: Connection) -> T:
        async with connection.transaction():
            return await work(connection)

    return await with_retry(pool, transactional)


SERVER_SETTINGS = {"timezone": "UTC", "application_name": "seeonline-api"}
# A client that stops reading a stream holds its transaction open; Postgres ends it after this long.
STREAM_IDLE_TIMEOUT_MS = 60_000
STREAM_SLOT_WAIT = 30.0


class StreamSource:
    """Unpaginated lists stream from connections of their own, never the pool's, at most ``limit`` at once.

    A slow reader then holds one extra connection, not one that requests need; the limit bounds how
    many such connections exist.
    """

    def __init__(self, dsn: str, limit: int) -> None:
        self.dsn = dsn
        self._slots = asyncio.Semaphore(limit)

    async def json_array(self, sql: str, args: tuple[Any, ...]) -> AsyncIterator[bytes]:
        """Stream a query's single text column as a JSON array, in chunks, from one snapshot."""
        async with asyncio.timeout(STREAM_SLOT_WAIT):
            await self._slots.acquire()
        try:
            connection = await asyncpg.connect(
                self.dsn,
                server_settings={
                    **SERVER_SETTINGS,
                    "idle_in_transaction_session_timeout": str(STREAM_IDLE_TIMEOUT_MS),
                },
            )
            try:
                await _init_connection(connection)
                async with connection.transaction(isolation="repeatable_read", readonly=True):
                    buffer: list[str] = ["["]
                    size = 1
                    first = True
                    async for record in connection.cursor(sql, *args, prefetch=1000):
                        piece = record[0] if first else "," + record[0]
                        first = False
                        buffer.append(piece)
                        size += len(piece)
                        if size >= STREAM_CHUNK_BYTES:
                            yield "".join(buffer).encode()
                            buffer, size = [], 0
                    buffer.append("]")
                    yield "".join(buffer).encode()
            finally:
                await connection.close()
        finally:
            self._slots.release()

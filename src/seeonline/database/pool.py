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


async def create_pool(dsn: str, *, size: int, statement_timeout: float = 0) -> asyncpg.Pool:
    """A pool whose sessions render timestamps in UTC (ISO 8601 with ``+00:00``).

    ``statement_timeout`` (seconds, 0 for none) bounds every statement, so no request can keep a query
    running for long (``?limit=1&offset=<huge>`` would otherwise scan a whole table).
    """
    pool: asyncpg.Pool = await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=size,
        server_settings=session_settings(statement_timeout),
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


# JIT off: every API statement is a short indexed read, where compiling costs tens of milliseconds and a
# misestimated plan above jit_above_cost would pay that on every execution.
SERVER_SETTINGS = {"timezone": "UTC", "application_name": "seeonline-api", "jit": "off"}
# A client that stops reading a stream holds its transaction open; Postgres ends it after this long.
STREAM_IDLE_TIMEOUT_MS = 60_000
# How long a list waits for a free stream slot before it is answered 503 (before any header is sent).
STREAM_SLOT_WAIT = 1.0


def session_settings(statement_timeout: float) -> dict[str, str]:
    """Server settings of the API's sessions; ``statement_timeout`` in seconds, 0 for none."""
    return {**SERVER_SETTINGS, "statement_timeout": str(round(statement_timeout * 1000))}


class StreamsBusyError(Exception):
    """Every stream slot is taken: the client should retry later."""


class StreamSource:
    """Unpaginated lists stream from connections of their own, never the pool's, at most ``limit`` at once.

    A slow reader then holds one extra connection, not one that requests need; the limit bounds how
    many such connections exist.
    """

    def __init__(self, dsn: str, limit: int, statement_timeout: float = 0) -> None:
        self.dsn = dsn
        self._slots = asyncio.Semaphore(limit)
        self._settings = {
            **session_settings(statement_timeout),
            "idle_in_transaction_session_timeout": str(STREAM_IDLE_TIMEOUT_MS),
        }

    async def open(
        self, sql: str, args: tuple[Any, ...], *, head: str = "[", separator: str = ",", tail: str = "]"
    ) -> OpenStream:
        """Take a slot and open a snapshot for ``sql``, or raise ``StreamsBusyError``; nothing is sent yet.

        The stream is the query's single text column joined by ``separator`` between ``head`` and ``tail``:
        a JSON array by default, CSV lines with ``separator=""``.
        """
        try:
            async with asyncio.timeout(STREAM_SLOT_WAIT):
                await self._slots.acquire()
        except TimeoutError:
            raise StreamsBusyError from None
        try:
            connection = await asyncpg.connect(self.dsn, server_settings=self._settings)
            try:
                await _init_connection(connection)
                await connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            except BaseException:
                await connection.close()
                raise
        except BaseException:
            self._slots.release()
            raise
        return OpenStream(self._slots, connection, sql, args, (head, separator, tail))


class OpenStream:
    """One stream's slot, connection and snapshot; :meth:`close` gives them back (idempotent)."""

    def __init__(
        self,
        slots: asyncio.Semaphore,
        connection: asyncpg.Connection,
        sql: str,
        args: tuple[Any, ...],
        shape: tuple[str, str, str],
    ) -> None:
        self._slots = slots
        self._head, self._separator, self._tail = shape
        self._connection = connection
        self._sql = sql
        self._args = args
        self._closed = False

    async def chunks(self) -> AsyncIterator[bytes]:
        """The query's rows between head and tail, in chunks; closes the stream at the end."""
        try:
            buffer: list[str] = [self._head]
            size = len(self._head)
            first = True
            async for record in self._connection.cursor(self._sql, *self._args, prefetch=1000):
                piece = record[0] if first else self._separator + record[0]
                first = False
                buffer.append(piece)
                size += len(piece)
                if size >= STREAM_CHUNK_BYTES:
                    yield "".join(buffer).encode()
                    buffer, size = [], 0
            buffer.append(self._tail)
            yield "".join(buffer).encode()
        finally:
            await self.close()

    async def close(self) -> None:
        """End the snapshot, close the connection and free the slot."""
        if self._closed:
            return
        self._closed = True
        try:
            self._connection.terminate()  # no round trip: closing also ends the transaction
        finally:
            self._slots.release()

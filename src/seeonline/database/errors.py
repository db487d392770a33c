"""The exceptions that mean "the database call failed; reconnect and try again"."""

from __future__ import annotations

import asyncpg

# InternalClientError is what asyncpg raises when the connection dies in the middle of an operation
# (for instance during COMMIT while Postgres restarts); it derives from neither of the others.
DATABASE_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)

# A deadlock or serialization failure means "run the transaction again": the engine's SQL is safe to repeat.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})

"""Writes to the status log through the API (workers ingest through their own batched path)."""

from __future__ import annotations

from typing import Any

import asyncpg

from seeonline.api.bodies import provided
from seeonline.api.errors import not_found
from seeonline.choices import StatusSource
from seeonline.database.pool import with_retry
from seeonline.database.set_clause import set_clause
from seeonline.statuses.resources import STATUS_JSON
from seeonline.statuses.schemas import OnlineStatusCreate, OnlineStatusUpdate, as_utc


class StatusService:
    """OnlineStatus writes, each one statement that returns the row's JSON."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def create(self, data: OnlineStatusCreate) -> str:
        """Insert a status row; returns its JSON."""
        created_at = as_utc(data.created_at) if data.created_at is not None else None
        sql = (
            "INSERT INTO online_statuses AS r (tracked_user_id, is_online, created_at, source)"
            f" VALUES ($1, $2, coalesce($3, now()), '{StatusSource.API}') RETURNING {STATUS_JSON}::text"
        )
        body: str = await with_retry(
            self.pool, lambda c: c.fetchval(sql, data.tracked_user_id, data.is_online, created_at)
        )
        return body

    async def update(self, status_id: int, data: OnlineStatusUpdate) -> str:
        """Apply a PATCH; returns the row's JSON."""
        values = provided(data)
        if "created_at" in values:
            values["created_at"] = as_utc(values["created_at"])
        args: list[Any] = [status_id]
        assignments = set_clause(values, args) or "id = id"
        sql = f"UPDATE online_statuses AS r SET {assignments} WHERE r.id = $1 RETURNING {STATUS_JSON}::text"
        body: str | None = await with_retry(self.pool, lambda c: c.fetchval(sql, *args))
        if body is None:
            raise not_found("OnlineStatus")
        return body

    async def delete_where(self, condition: str, key: object) -> int:
        """Delete the rows matching ``condition`` (a fixed SQL text with ``$1``); 404 when none."""
        deleted: int = await with_retry(
            self.pool,
            lambda c: c.fetchval(
                f"WITH gone AS (DELETE FROM online_statuses r WHERE {condition} RETURNING 1) SELECT count(*) FROM gone",
                key,
            ),
        )
        if not deleted:
            raise not_found("OnlineStatus")
        return deleted

"""CSV exports of the status log and of sessions, streamed, with times in the requested zone."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import asyncpg

from seeonline.api.listing import open_stream, order_clause, where_clause
from seeonline.api.params import parse_non_negative
from seeonline.database.pool import StreamSource
from seeonline.history.reads import zone_errors
from seeonline.statuses.resources import ONLINE_STATUSES

CSV = "text/csv; charset=utf-8"
STATUSES_HEADER = "id,tracked_user_id,is_online,created_at,source\n"


async def statuses_csv(
    pool: asyncpg.Pool, streams: StreamSource, query: Mapping[str, str], tz: str | None
) -> AsyncIterator[bytes]:
    """``GET /online-statuses/?format=csv``: the same filters, ordering and page as the JSON list."""
    args: list[Any] = []
    where = where_clause(ONLINE_STATUSES, query, args)
    order = order_clause(ONLINE_STATUSES, query.get("ordering"))
    args.append(tz or "UTC")
    zone = f"${len(args)}"
    page = ""
    if query.get("limit") not in (None, "", "0"):  # the JSON list's page rules
        page = f" LIMIT {parse_non_negative('limit', query['limit'])}"
        page += f" OFFSET {parse_non_negative('offset', query.get('offset') or '0')}"
    with zone_errors():  # a zone this Postgres lacks is a 400 before the stream starts
        await pool.fetchval("SELECT now() AT TIME ZONE $1::text", tz or "UTC")
    sql = (
        f"SELECT concat_ws(',', r.id, r.tracked_user_id, r.is_online::text, so_local_iso(r.created_at, {zone}::text),"
        f" coalesce(r.source, '')) || E'\\n' FROM {ONLINE_STATUSES.source} WHERE {where} ORDER BY {order}{page}"
    )
    return await open_stream(streams, sql, tuple(args), head=STATUSES_HEADER, separator="", tail="")

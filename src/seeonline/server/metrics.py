"""``GET /metrics``: the pool's health in Prometheus text format, cached per process and cheap on big tables.

A scrape reads the small tracker tables exactly; the big ones (targets, tracked users, bot users) are
counted up to ``EXACT_UP_TO`` rows and estimated from the planner's statistics beyond, so a scrape costs
the same on ten rows or ten million. Answers are cached for ``SEEONLINE_METRICS_CACHE_SECONDS`` and
concurrent scrapes share one query. ``SEEONLINE_METRICS_KEY`` protects the route when set.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from typing import Any

import asyncpg
from litestar import Request, Response, get

from seeonline.api.auth import API_KEY_HEADER
from seeonline.api.handler_types import Pool
from seeonline.api.openapi import error
from seeonline.health import HealthState
from seeonline.server import request_metrics

# The Prometheus text exposition format, the type Prometheus expects of a scrape.
PROMETHEUS_TEXT = "text/plain; version=0.0.4"
EXACT_UP_TO = 10_000


def sized(table: str) -> str:
    """Rows of ``table``: exact up to ``EXACT_UP_TO``, the planner's estimate beyond (never below the cap)."""
    capped = f"(SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT {EXACT_UP_TO}) AS capped)"
    estimate = f"(SELECT reltuples FROM pg_class WHERE oid = '{table}'::regclass)"
    return f"(SELECT CASE WHEN n < {EXACT_UP_TO} THEN n ELSE greatest(n, {estimate}) END FROM {capped} AS c(n))"


GAUGES_SQL = f"""
SELECT
    (SELECT coalesce(json_object_agg(state, n), '{{}}') FROM (
        SELECT coalesce(h.state, '{HealthState.STOPPED}') AS state, count(*) AS n
        FROM tracker_accounts a LEFT JOIN tracker_health h ON h.tracker_account_id = a.id GROUP BY 1
    ) AS states)::text AS trackers_by_state,
    (SELECT count(*) FROM so_usable_trackers) AS usable_trackers,
    (SELECT coalesce(sum(max_users), 0) FROM so_usable_trackers) AS slots_total,
    (SELECT coalesce(sum(current_users), 0) FROM so_usable_trackers) AS slots_used,
    (SELECT count(*) FROM (SELECT 1 FROM targets WHERE tracker_account_id IS NULL LIMIT {EXACT_UP_TO}) AS w)
        AS targets_waiting,
    {sized("targets")} AS targets,
    {sized("tracked_users")} AS tracked_users,
    {sized("telegram_users")} AS telegram_users,
    (SELECT coalesce(extract(epoch FROM now() - min(last_heartbeat_at)), 0) FROM tracker_health
        WHERE state = '{HealthState.OK}') AS oldest_heartbeat_seconds
"""

HELP = {
    "usable_trackers": "Trackers that can receive targets now.",
    "slots_total": "max_users summed over usable trackers.",
    "slots_used": "Targets assigned to usable trackers.",
    "targets_waiting": f"Targets with no tracker, waiting for capacity (counted up to {EXACT_UP_TO}).",
    "targets": f"Distinct watched Telegram accounts (estimated above {EXACT_UP_TO}).",
    "tracked_users": f"Subscriptions, TrackedUser rows (estimated above {EXACT_UP_TO}).",
    "telegram_users": f"Bot users (estimated above {EXACT_UP_TO}).",
    "oldest_heartbeat_seconds": "Age of the oldest heartbeat among trackers in state ok.",
}


def render(row: asyncpg.Record) -> str:
    """The Prometheus text of one gauges row."""
    lines = [
        "# HELP seeonline_trackers Tracker accounts by health state.",
        "# TYPE seeonline_trackers gauge",
    ]
    for state, count in sorted(json.loads(row["trackers_by_state"]).items()):
        lines.append(f'seeonline_trackers{{state="{state}"}} {count}')
    for name, text in HELP.items():
        lines += [
            f"# HELP seeonline_{name} {text}",
            f"# TYPE seeonline_{name} gauge",
            f"seeonline_{name} {float(row[name]):g}",
        ]
    return "\n".join(lines) + "\n"


class MetricsCache:
    """The last rendered scrape of this process, refreshed at most every ``ttl`` seconds by one query."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._text: str | None = None
        self._at = 0.0
        self._lock = asyncio.Lock()

    def _fresh(self) -> bool:
        return self._text is not None and time.monotonic() - self._at < self.ttl

    async def text(self, pool: asyncpg.Pool) -> str:
        """The cached text, or a new scrape when it is older than ``ttl`` (concurrent callers share it)."""
        if self._fresh():
            assert self._text is not None
            return self._text
        async with self._lock:
            if not self._fresh():
                row = await pool.fetchrow(GAUGES_SQL)
                assert row is not None
                self._text, self._at = render(row), time.monotonic()
            assert self._text is not None
            return self._text


def metrics_key_is_valid(request: Request[Any, Any, Any], key: bytes) -> bool:
    """Whether the request carries ``key`` as ``Authorization: Bearer`` (Prometheus' own) or ``X-API-Key``."""
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    supplied = token.strip() if scheme.lower() == "bearer" else request.headers.get(API_KEY_HEADER, "")
    return hmac.compare_digest(supplied.encode("utf-8", "surrogateescape"), key)


@get(
    "/metrics",
    tags=["operations"],
    media_type=PROMETHEUS_TEXT,
    responses={401: error("Missing or invalid metrics key, when SEEONLINE_METRICS_KEY is set")},
)
async def metrics(request: Request[Any, Any, Any], pool: Pool) -> Response[Any]:
    """Gauges about trackers, slots and targets (open unless ``SEEONLINE_METRICS_KEY`` is set)."""
    key: bytes | None = request.app.state.metrics_key
    if key is not None and not metrics_key_is_valid(request, key):
        return Response(
            {"detail": "Missing or invalid metrics key (Authorization: Bearer or X-API-Key)."},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
            media_type="application/json",  # the route's own type is Prometheus text
        )
    cache: MetricsCache = request.app.state.metrics_cache
    return Response(await cache.text(pool) + request_metrics.render(), media_type=PROMETHEUS_TEXT)

"""``GET /metrics``: the pool's health in Prometheus text format, read from Postgres at scrape time."""

from __future__ import annotations

import json

from litestar import Response, get

from seeonline.api.handler_types import Pool
from seeonline.health import HealthState
from seeonline.server import request_metrics

GAUGES_SQL = f"""
SELECT
    (SELECT coalesce(json_object_agg(state, n), '{{}}') FROM (
        SELECT coalesce(h.state, '{HealthState.STOPPED}') AS state, count(*) AS n
        FROM tracker_accounts a LEFT JOIN tracker_health h ON h.tracker_account_id = a.id GROUP BY 1
    ) AS states)::text AS trackers_by_state,
    (SELECT count(*) FROM so_usable_trackers) AS usable_trackers,
    (SELECT coalesce(sum(max_users), 0) FROM so_usable_trackers) AS slots_total,
    (SELECT coalesce(sum(current_users), 0) FROM so_usable_trackers) AS slots_used,
    (SELECT count(*) FROM targets WHERE tracker_account_id IS NULL) AS targets_waiting,
    (SELECT count(*) FROM targets) AS targets,
    (SELECT count(*) FROM tracked_users) AS tracked_users,
    (SELECT count(*) FROM telegram_users) AS telegram_users,
    (SELECT coalesce(extract(epoch FROM now() - min(last_heartbeat_at)), 0) FROM tracker_health
        WHERE state = '{HealthState.OK}') AS oldest_heartbeat_seconds
"""

HELP = {
    "usable_trackers": "Trackers that can receive targets now.",
    "slots_total": "max_users summed over usable trackers.",
    "slots_used": "Targets assigned to usable trackers.",
    "targets_waiting": "Targets with no tracker, waiting for capacity.",
    "targets": "Distinct watched Telegram accounts.",
    "tracked_users": "Subscriptions (TrackedUser rows).",
    "telegram_users": "Bot users.",
    "oldest_heartbeat_seconds": "Age of the oldest heartbeat among trackers in state ok.",
}


@get("/metrics", tags=["operations"], media_type="text/plain; version=0.0.4")
async def metrics(pool: Pool) -> Response[str]:
    """Gauges about trackers, slots and targets (no API key needed)."""
    row = await pool.fetchrow(GAUGES_SQL)
    assert row is not None
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
    return Response("\n".join(lines) + "\n" + request_metrics.render(), media_type="text/plain; version=0.0.4")

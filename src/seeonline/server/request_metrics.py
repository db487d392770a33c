"""Prometheus counts and latency histograms of the API's requests, per route, appended to ``/metrics``.

Litestar's Prometheus middleware does the measuring; routes are labelled by their template
(``/tracker-settings/{setting_id:int}/``), and requests matching no route are not counted, so a
scanner cannot grow the label set. With ``seeonline api --workers N`` each process counts its own.
"""

from __future__ import annotations

from litestar.plugins.prometheus import PrometheusConfig
from prometheus_client import REGISTRY, generate_latest

PREFIX = "seeonline_http"
# Metric names the middleware exports (its own naming: <prefix>_<what>).
REQUESTS = f"{PREFIX}_requests_total"
DURATION = f"{PREFIX}_request_duration_seconds"
IN_PROGRESS = f"{PREFIX}_requests_in_progress"
ERRORS = f"{PREFIX}_requests_error_total"

REQUEST_METRICS = PrometheusConfig(
    app_name="seeonline",
    prefix=PREFIX,
    group_path=True,
    exclude_unhandled_paths=True,
    buckets=[0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
)


def render() -> str:
    """This process's request metrics (and Python's process metrics) in Prometheus text format."""
    return generate_latest(REGISTRY).decode()

"""Prometheus counts and latency histograms of the API's requests, per route, appended to ``/metrics``.

Litestar's Prometheus middleware does the measuring; routes are labelled by their template
(``/tracker-settings/{setting_id:int}/``), and requests matching no route are not counted, so a
scanner cannot grow the label set. With ``seeonline api --workers N`` every process writes its counts
to a shared directory and each scrape sums them all, whichever process answers it (otherwise every
scrape would show one process's counters, and Prometheus would read each switch as a counter reset).
"""

from __future__ import annotations

from litestar.plugins.prometheus import PrometheusConfig
from prometheus_client import REGISTRY, generate_latest

from seeonline import multiprocess_metrics

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
    """The request metrics in Prometheus text format: every worker process's, summed, when there are
    several; else this process's (with Python's process metrics)."""
    directory = multiprocess_metrics.shared_directory()
    if directory is not None:
        return multiprocess_metrics.render(directory)
    return generate_latest(REGISTRY).decode()

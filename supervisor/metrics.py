"""The supervisor's and its workers' Prometheus metrics (definitions; ``metrics_server`` serves them).

Every worker is a process of its own. When the supervisor serves metrics it points
``PROMETHEUS_MULTIPROC_DIR`` at a directory before its forkserver starts, so the worker metrics
below are written to per-process files there (prometheus_client's multiprocess mode) and summed at
scrape time; counters and histograms of exited workers keep counting, gauges count live workers
only. The supervisor's own metrics stay in its memory, in ``SUPERVISOR_REGISTRY``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

SUPERVISOR_REGISTRY = CollectorRegistry(auto_describe=True)

WORKER_RESTARTS = Counter(
    "seeonline_supervisor_worker_restarts",
    "Worker exits the supervisor answers with a restart (crashes and retirements; not stops or lock hand-overs).",
    registry=SUPERVISOR_REGISTRY,
)

# Worker-side metrics (the default registry; in workers they live in the multiprocess files).
TRANSITIONS = Counter("seeonline_worker_transitions", "Status transitions written to Postgres by the workers.")
BATCH_WRITE_SECONDS = Histogram(
    "seeonline_worker_batch_write_seconds",
    "Time to write one batch of transitions (one transaction).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
BUFFERED_TRANSITIONS = Gauge(
    "seeonline_worker_buffered_transitions",
    "Transitions and updates waiting in the workers to be written (grows while Postgres is away).",
    multiprocess_mode="livesum",
)
TELEGRAM_CONNECTED = Gauge(
    "seeonline_worker_telegram_connected",
    "Workers connected to Telegram now.",
    multiprocess_mode="livesum",
)
RESYNC_SECONDS = Histogram(
    "seeonline_worker_resync_seconds",
    "Duration of a successful resync (contacts.getStatuses after a (re)connect or on the timer).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
FLOOD_WAITS = Counter(
    "seeonline_worker_flood_waits",
    "Flood waits Telegram imposed on the workers, by what followed: short (slept), paused (one kind of call), "
    "retired (the tracker).",
    ["outcome"],
)
for _outcome in ("short", "paused", "retired"):
    FLOOD_WAITS.labels(outcome=_outcome)  # exported at 0 before the first flood wait, so rates start from zero

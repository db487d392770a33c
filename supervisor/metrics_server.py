"""``SEEONLINE_SUPERVISOR_METRICS_PORT``: the supervisor serves its and its workers' metrics over HTTP.

``enable()`` must run before the forkserver starts (the workers inherit the directory through the
environment) and after this process imported prometheus_client, so that the supervisor itself keeps
its metrics in memory and only the workers write files.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import multiprocess, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from seeonline import multiprocess_metrics
from seeonline_supervisor.metrics import SUPERVISOR_REGISTRY
from seeonline_supervisor.process import State

if TYPE_CHECKING:
    from seeonline_supervisor.supervisor import Supervisor

SUPERVISOR_PREFIX = "seeonline_supervisor_"


class WorkersByState(Collector):
    """``seeonline_supervisor_workers{state}``, read from the supervisor's processes at scrape time."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor

    def collect(self) -> Iterator[Metric]:
        counts = dict.fromkeys(State, 0)
        for process in list(self.supervisor.processes.values()):
            counts[process.state] += 1
        family = GaugeMetricFamily(
            "seeonline_supervisor_workers", "Tracker worker processes by state.", labels=["state"]
        )
        for state, count in counts.items():
            family.add_metric([state.value], count)
        yield family


class WorkerFiles(Collector):
    """The workers' metrics, summed over their files; the supervisor's own (``seeonline_supervisor_*``)
    come from its memory only (the forkserver's copy of them in the files is always zero)."""

    def __init__(self, directory: Path) -> None:
        self.files = multiprocess.MultiProcessCollector(None, path=str(directory))  # type: ignore[no-untyped-call]

    def collect(self) -> Iterator[Metric]:
        for family in self.files.collect():  # type: ignore[no-untyped-call]
            if not family.name.startswith(SUPERVISOR_PREFIX):
                yield family


def enable() -> Path:
    """Create the workers' metric directory and announce it to the processes started from now on."""
    return multiprocess_metrics.share_with_children("seeonline-metrics-")


def serve(bind: str, port: int, supervisor: Supervisor, directory: Path) -> None:
    """Serve the metrics at ``http://bind:port/`` (any path) from a thread of prometheus_client's."""
    # First: it runs before the files are read.
    SUPERVISOR_REGISTRY.register(multiprocess_metrics.DeadProcessGauges(directory))
    SUPERVISOR_REGISTRY.register(WorkerFiles(directory))
    SUPERVISOR_REGISTRY.register(WorkersByState(supervisor))
    start_http_server(port, addr=bind, registry=SUPERVISOR_REGISTRY)


def remove(directory: Path) -> None:
    """Delete the metric directory when the supervisor exits."""
    multiprocess_metrics.remove(directory)

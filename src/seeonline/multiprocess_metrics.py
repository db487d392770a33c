"""Prometheus metrics of several processes summed into one scrape (prometheus_client's multiprocess mode).

The API's worker processes (``seeonline api --workers N``) and the supervisor's tracker workers each
write their metrics to files of their own in one directory, named by ``PROMETHEUS_MULTIPROC_DIR``; a
scrape sums them. The variable must be set before the processes that write import prometheus_client
(it picks file-backed values once, at import), so the parent sets it before it starts them.
Counters and histograms of exited processes keep counting; live gauges count live processes only.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db")


def share_with_children(prefix: str) -> Path:
    """A fresh metrics directory, announced to the processes started from now on."""
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory


def shared_directory() -> Path | None:
    """The metrics directory this process writes to, when it is one of several."""
    value = os.environ.get(MULTIPROC_ENV, "").strip()
    return Path(value) if value else None


def remove(directory: Path) -> None:
    """Delete a metrics directory once its processes are gone."""
    shutil.rmtree(directory, ignore_errors=True)


class DeadProcessGauges(Collector):
    """Drops the live-gauge files of processes that exited, so live gauges count live processes only.

    Register it before the collector that reads the files: it runs first at every scrape.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def collect(self) -> Iterator[Metric]:
        for path in self.directory.glob("gauge_live*.db"):
            match = _LIVE_GAUGE_FILE.fullmatch(path.name)
            if match and not psutil.pid_exists(int(match.group(1))):
                multiprocess.mark_process_dead(int(match.group(1)), str(self.directory))  # type: ignore[no-untyped-call]
        return iter(())


def summed_registry(directory: Path) -> CollectorRegistry:
    """A registry that reads every process's files in ``directory`` and sums them."""
    registry = CollectorRegistry()
    registry.register(DeadProcessGauges(directory))
    multiprocess.MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return registry


def render(directory: Path) -> str:
    """Every process's metrics in ``directory``, summed, in Prometheus text format."""
    return generate_latest(summed_registry(directory)).decode()

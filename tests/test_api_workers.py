"""``seeonline api --workers N``: several processes serve one port, each a whole app."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from seeonline.local.embedded_postgres import find_free_port
from seeonline.server.request_metrics import REQUESTS
from tests.api.live_server import wait_for_health
from tests.support.keys import API_KEY, SECRET_KEY
from tests.test_cli import clean_env

SEEONLINE = [sys.executable, "-m", "seeonline"]


@contextlib.contextmanager
def two_workers(database_url: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``seeonline api --workers 2`` on a free port; yields its URL and process, stops it afterwards."""
    port = find_free_port()
    env = clean_env(DATABASE_URL=database_url, SEEONLINE_API_KEYS=API_KEY, SEEONLINE_SECRET_KEY=SECRET_KEY)
    process = subprocess.Popen(
        [*SEEONLINE, "api", "--port", str(port), "--workers", "2"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_health(url, process, timeout=60)
        yield url, process
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)


def worker_processes(process: subprocess.Popen[str]) -> list[psutil.Process]:
    """The live server processes (not zombies waiting to be reaped)."""
    workers = []
    for child in psutil.Process(process.pid).children(recursive=True):
        with contextlib.suppress(psutil.ZombieProcess, psutil.NoSuchProcess):
            if "--multiprocessing-fork" in child.cmdline():
                workers.append(child)
    return workers


def test_two_workers_serve_one_port(database_url: str) -> None:
    with two_workers(database_url) as (url, process):
        servers = worker_processes(process)
        assert len(servers) == 2, [(p.ppid(), p.cmdline()[-2:]) for p in servers]
        headers = {"X-API-Key": API_KEY}
        ids = [
            httpx.post(f"{url}/telegram-users/", json={"telegram_id": 81_000 + n}, headers=headers).json()["id"]
            for n in range(10)
        ]
        for person in ids:  # every write is visible to whichever process answers the read
            assert httpx.get(f"{url}/telegram-users/{person}/", headers=headers).status_code == 200
        tree = psutil.Process(process.pid).children(recursive=True)
    _, alive = psutil.wait_procs(tree, timeout=15)
    assert not alive


def requests_counted(text: str, method: str, path: str) -> float:
    """``seeonline_http_requests_total`` of one route, over its statuses."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == REQUESTS and sample.labels["method"] == method and sample.labels["path"] == path
    )


def test_every_scrape_counts_the_requests_of_every_worker(database_url: str) -> None:
    """Whichever process answers /metrics, it counts all of them (Prometheus reads a drop as a reset)."""
    with two_workers(database_url) as (url, process):
        for _ in range(40):  # a new connection each: the kernel hands them to either process
            assert httpx.get(f"{url}/telegram-users/", headers={"X-API-Key": API_KEY}).status_code == 200
        scrapes = [httpx.get(f"{url}/metrics").text for _ in range(8)]
        assert [requests_counted(text, "GET", "/telegram-users") for text in scrapes] == [40] * 8

        # A worker that dies is replaced, and what it counted still counts.
        victim = worker_processes(process)[0]
        victim.kill()
        deadline = time.monotonic() + 60
        while victim in worker_processes(process) or len(worker_processes(process)) < 2:
            assert time.monotonic() < deadline, "the dead worker was not replaced"
            time.sleep(0.2)
        wait_for_health(url, process)
        assert requests_counted(httpx.get(f"{url}/metrics").text, "GET", "/telegram-users") == 40


@pytest.mark.parametrize("value", ["0", "many"])
def test_a_bad_worker_count_is_refused_naming_the_option(value: str) -> None:
    env = clean_env(
        DATABASE_URL="postgresql://127.0.0.1:1/x", SEEONLINE_API_KEYS=API_KEY, SEEONLINE_SECRET_KEY=SECRET_KEY
    )
    result = subprocess.run(
        [*SEEONLINE, "api", "--workers", value], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "--workers" in result.stderr


def test_a_worker_process_freezes_its_startup_objects_out_of_the_collectors_way() -> None:
    """Full collections then walk only what requests made (bench/events.py: 100-370 ms pauses with 1,000 streams)."""
    env = clean_env(
        DATABASE_URL="postgresql://127.0.0.1:1/x", SEEONLINE_API_KEYS=API_KEY, SEEONLINE_SECRET_KEY=SECRET_KEY
    )
    probe = (
        "import gc; from seeonline.cli.serve import app_from_environment;"
        " app_from_environment(); print(gc.get_freeze_count())"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert int(result.stdout.strip()) > 10_000  # the imports and the app

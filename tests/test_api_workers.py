"""``seeonline api --workers N``: several processes serve one port, each a whole app."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx
import psutil
import pytest

from seeonline.local.embedded_postgres import find_free_port
from tests.api.live_server import wait_for_health
from tests.support.keys import API_KEY, SECRET_KEY
from tests.test_cli import clean_env

SEEONLINE = [sys.executable, "-m", "seeonline"]


def test_two_workers_serve_one_port(database_url: str) -> None:
    port = find_free_port()
    env = clean_env(DATABASE_URL=database_url, SEEONLINE_API_KEYS=API_KEY, SEEONLINE_SECRET_KEY=SECRET_KEY)
    process = subprocess.Popen(
        [*SEEONLINE, "api", "--port", str(port), "--workers", "2"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_health(url, process, timeout=60)
        servers = [
            p for p in psutil.Process(process.pid).children(recursive=True) if "--multiprocessing-fork" in p.cmdline()
        ]
        assert len(servers) == 2, [(p.ppid(), p.cmdline()[-2:]) for p in servers]
        headers = {"X-API-Key": API_KEY}
        ids = [
            httpx.post(f"{url}/telegram-users/", json={"telegram_id": 81_000 + n}, headers=headers).json()["id"]
            for n in range(10)
        ]
        for person in ids:  # every write is visible to whichever process answers the read
            assert httpx.get(f"{url}/telegram-users/{person}/", headers=headers).status_code == 200
        tree = psutil.Process(process.pid).children(recursive=True)
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    _, alive = psutil.wait_procs(tree, timeout=15)
    assert not alive


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

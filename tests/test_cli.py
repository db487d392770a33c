"""The command line as an operator meets it: bad settings, `seeonline run` on an embedded Postgres."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from seeonline.local.embedded_postgres import find_free_port
from tests.api.live_server import wait_for_health
from tests.support.keys import SECRET_KEY

SEEONLINE = [sys.executable, "-m", "seeonline"]


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        key: value for key, value in os.environ.items() if not key.startswith("SEEONLINE_") and key != "DATABASE_URL"
    }
    env.update(extra)
    return env


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SEEONLINE_DB_POOL_SIZE", "lots"),
        ("DATABASE_URL", "mysql://nope"),
        ("SEEONLINE_SECRET_KEY", "short"),
        ("SEEONLINE_API_KEYS", "a,b"),
        ("SEEONLINE_LOG_LEVEL", "loud"),
    ],
)
def test_a_bad_setting_stops_start_up_naming_the_variable(variable: str, value: str) -> None:
    env = clean_env(DATABASE_URL="postgresql://127.0.0.1:1/x", SEEONLINE_API_KEYS="k" * 30)
    env[variable] = value
    result = subprocess.run([*SEEONLINE, "api"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert variable in result.stderr


def test_api_without_keys_names_the_variable() -> None:
    env = clean_env(DATABASE_URL="postgresql://127.0.0.1:1/x", SEEONLINE_SECRET_KEY=SECRET_KEY)
    result = subprocess.run([*SEEONLINE, "api"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert "SEEONLINE_API_KEYS" in result.stderr


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="seeonline-run-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_run_on_embedded_postgres_generates_a_key_and_refuses_a_busy_data_dir(data_dir: Path) -> None:
    port = find_free_port()
    env = clean_env(SEEONLINE_DATA_DIR=str(data_dir))
    first = subprocess.Popen(
        [*SEEONLINE, "run", "--no-demo", "--no-supervisor", "--port", str(port)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_health(url, first)
        credentials = json.loads((data_dir / "credentials.json").read_text())
        assert (data_dir / "credentials.json").stat().st_mode & 0o777 == 0o600
        assert httpx.get(f"{url}/telegram-users/").status_code == 401
        created = httpx.post(
            f"{url}/telegram-users/", json={"telegram_id": 1}, headers={"X-API-Key": credentials["api_key"]}
        )
        assert created.status_code == 201
        postgres = [p for p in psutil.Process(first.pid).children(recursive=True) if p.name().startswith("postgres")]
        assert postgres

        second = subprocess.run(
            [*SEEONLINE, "run", "--no-demo", "--no-supervisor", "--port", str(find_free_port())],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert second.returncode != 0
        assert "already in use" in second.stderr
    finally:
        first.send_signal(signal.SIGINT)
        _, stderr = first.communicate(timeout=30)
    assert re.search(r"Development API key \(X-API-Key\): " + re.escape(credentials["api_key"]), stderr)
    _, alive = psutil.wait_procs(postgres, timeout=15)
    assert not alive, "the embedded Postgres outlived seeonline run"


def test_run_without_trackers_starts_the_demo_and_statuses_flow(data_dir: Path) -> None:
    """The README's run command on a fresh checkout: statuses appear within a minute or so."""
    port = find_free_port()
    process = subprocess.Popen(
        [*SEEONLINE, "run", "--port", str(port)],
        env=clean_env(SEEONLINE_DATA_DIR=str(data_dir), SEEONLINE_LOG_LEVEL="warning"),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_health(url, process, timeout=90)
        key = json.loads((data_dir / "credentials.json").read_text())["api_key"]
        headers = {"X-API-Key": key}
        trackers = httpx.get(f"{url}/tracker-accounts/", headers=headers).json()
        assert len(trackers) == 3
        deadline = time.monotonic() + 120
        statuses: list[dict[str, object]] = []
        while time.monotonic() < deadline and not statuses:
            statuses = httpx.get(f"{url}/online-statuses/?limit=10", headers=headers).json()
            time.sleep(1)
        assert statuses, "no status recorded by the demo"
        healthy = [t["health"]["state"] for t in httpx.get(f"{url}/tracker-accounts/", headers=headers).json()]
        assert healthy.count("ok") == 3
        tree = psutil.Process(process.pid).children(recursive=True)
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)
    _, alive = psutil.wait_procs(tree, timeout=20)
    assert not alive, f"left behind: {[p.name() for p in alive]}"

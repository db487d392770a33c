"""The wheel on its own: a regular install in a fresh virtualenv migrates a database, runs and demos.

The checkout's editable install reads ``db/`` in place; a wheel has to carry it. These tests build the
wheel, install it (not editable) into an empty virtualenv and run its ``seeonline`` from a directory
outside the checkout, so nothing can come from the repository by accident.
"""

from __future__ import annotations

import json
import os
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
from prometheus_client.parser import text_string_to_metric_families

from seeonline.local.embedded_postgres import find_free_port
from tests.api.live_server import wait_for_health
from tests.support.postgres import PostgresServer
from tests.test_monitoring import dashboard_metrics, scraped_names

ROOT = Path(__file__).resolve().parents[1]


class Installed:
    """A virtualenv with only the wheel (and its dependencies) installed."""

    def __init__(self, venv: Path) -> None:
        self.venv = venv
        self.bin = venv / "bin"
        found = list((venv / "lib").glob("python3*/site-packages"))
        assert len(found) == 1, found
        self.site_packages = found[0]

    def env(self, **extra: str) -> dict[str, str]:
        """The environment without this checkout's settings or paths."""
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("SEEONLINE_", "PYTHON", "VIRTUAL_ENV")) and key != "DATABASE_URL"
        }
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env.update(extra)
        return env

    def run(self, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin / "seeonline"), *args],
            cwd=cwd,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    work = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(work / "dist"), str(ROOT)], check=True, timeout=300)
    (wheel,) = (work / "dist").glob("seeonline-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(work / "venv")], check=True, timeout=120)
    venv_pip = [str(work / "venv" / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*venv_pip, "install", str(wheel)], check=True, timeout=600)
    return Installed(work / "venv")


def test_the_wheel_ships_the_migrations_and_no_top_level_supervisor(installed: Installed) -> None:
    site = installed.site_packages
    assert (site / "seeonline" / "_db" / "env.py").is_file()
    shipped_sql = sorted(p.name for p in (site / "seeonline" / "_db" / "sql").glob("*.sql"))
    assert shipped_sql == sorted(p.name for p in (ROOT / "db" / "sql").glob("*.sql"))
    shipped_revisions = sorted(p.name for p in (site / "seeonline" / "_db" / "versions").glob("*.py"))
    assert shipped_revisions == sorted(p.name for p in (ROOT / "db" / "versions").glob("*.py"))
    assert (site / "seeonline_supervisor" / "worker" / "main.py").is_file()
    assert not (site / "supervisor").exists(), "`supervisor` is PyPI's supervisord: ours is seeonline_supervisor"
    assert all(str(ROOT) not in pth.read_text() for pth in site.glob("*.pth")), "the install points into the checkout"


async def test_the_installed_command_migrates_and_checks_a_database(
    installed: Installed, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    name = f"seeonline_wheel_{os.getpid()}_{int(time.time())}"
    await postgres_server.execute(f'CREATE DATABASE "{name}"')
    try:
        url = postgres_server.url(name)
        before = installed.run("db", "check", cwd=tmp_path, DATABASE_URL=url)
        assert before.returncode != 0, "an empty database passed the check"
        upgraded = installed.run("db", "upgrade", cwd=tmp_path, DATABASE_URL=url)
        assert upgraded.returncode == 0, upgraded.stderr
        checked = installed.run("db", "check", cwd=tmp_path, DATABASE_URL=url)
        assert checked.returncode == 0, checked.stderr
        assert "schema matches" in checked.stdout
        # The supervisor and the worker load from the wheel under their installed name.
        for command in ("supervisor", "worker"):
            shown = installed.run(command, "--help", cwd=tmp_path)
            assert shown.returncode == 0, shown.stderr
    finally:
        await postgres_server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def home() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="seeonline-wheel-home-"))
    path.chmod(0o755)  # the embedded server runs as an unprivileged user when tests run as root
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
def test_the_installed_run_keeps_its_data_in_the_user_data_dir_and_demos(installed: Installed, home: Path) -> None:
    """``seeonline run`` from the wheel with nothing configured: embedded Postgres, demo, statuses, metrics."""
    port, metrics_port = find_free_port(), find_free_port()
    data = home / "xdg" / "seeonline"
    process = subprocess.Popen(
        [str(installed.bin / "seeonline"), "run", "--port", str(port)],
        cwd=home,
        env=installed.env(
            HOME=str(home),
            XDG_DATA_HOME=str(home / "xdg"),
            SEEONLINE_LOG_LEVEL="warning",
            SEEONLINE_SUPERVISOR_METRICS_PORT=str(metrics_port),
        ),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_health(url, process, timeout=120)
        assert (data / "postgres").is_dir()
        headers = {"X-API-Key": json.loads((data / "credentials.json").read_text())["api_key"]}
        assert len(httpx.get(f"{url}/tracker-accounts/", headers=headers).json()) == 3
        deadline = time.monotonic() + 120
        statuses: list[object] = []
        while time.monotonic() < deadline and not statuses:
            statuses = httpx.get(f"{url}/online-statuses/?limit=1", headers=headers).json()
            time.sleep(1)
        assert statuses, "the demo recorded no status from the installed supervisor"
        # The workers become `running` a few seconds after they start, whatever they already wrote.
        wanted = {
            ("seeonline_supervisor_workers", (("state", "running"),)): 3,
            ("seeonline_worker_telegram_connected", ()): 3,
        }
        deadline = time.monotonic() + 120
        values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        while time.monotonic() < deadline and any(values.get(key) != n for key, n in wanted.items()):
            time.sleep(1)
            supervisor_metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/").text
            values = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for f in text_string_to_metric_families(supervisor_metrics)
                for s in f.samples
            }
        assert {key: values.get(key) for key in wanted} == wanted
        assert values[("seeonline_worker_transitions_total", ())] >= 1
        assert values[("seeonline_worker_resync_seconds_count", ())] >= 3
        api_metrics = httpx.get(f"{url}/metrics").text
        assert dashboard_metrics() - scraped_names(api_metrics + supervisor_metrics) == set()
        tree = psutil.Process(process.pid).children(recursive=True)
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)
    _, alive = psutil.wait_procs(tree, timeout=20)
    assert not alive, f"left behind: {[p.name() for p in alive]}"

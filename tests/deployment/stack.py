"""One compose project of the real deployment for the tests in this folder, and when they can run.

The stack is compose.yaml with ``--profile monitoring`` plus ``compose.monitoring.yaml`` (a Prometheus
built here from Debian's package, and a Telegram sandbox for the workers). It needs a container engine
behind ``docker compose`` (podman's API socket from ``shared/containers/setup-podman.sh``, or Docker);
``.ci/run`` starts one and sets ``SEEONLINE_DEPLOYMENT_TEST=1``. Elsewhere the tests are skipped, saying why.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from seeonline.local.embedded_postgres import find_free_port

ROOT = Path(__file__).resolve().parents[2]
OVERRIDE = Path(__file__).with_name("compose.monitoring.yaml").relative_to(ROOT)
BUILD_TIMEOUT = 900  # the first build installs the dependencies; later builds reuse the layers
STEP_TIMEOUT = 180
PROMETHEUS_IMAGE = "localhost/seeonline-prometheus:ci"  # the stand-in; real deployments keep prom/prometheus


def _why_not() -> str | None:
    if os.environ.get("SEEONLINE_DEPLOYMENT_TEST") != "1":
        return "the container deployment test runs from .ci/run (set SEEONLINE_DEPLOYMENT_TEST=1 with an engine up)"
    if shutil.which("docker") is None:
        return "no `docker` CLI (for `docker compose`): run shared/containers/setup-podman.sh install"
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=30, check=False)
    if probe.returncode != 0:
        return f"`docker compose` does not run: {probe.stderr.strip()[:200]}"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30, check=False)
    if info.returncode != 0:
        return f"no container engine answers (DOCKER_HOST={os.environ.get('DOCKER_HOST')}): {info.stderr.strip()[:200]}"
    return None


WHY_NOT = _why_not()
REQUIRES_ENGINE = pytest.mark.skipif(WHY_NOT is not None, reason=str(WHY_NOT))


class Stack:
    """One compose project of its own (name, ports, secrets, network, volumes), torn down at the end."""

    def __init__(self, workdir: Path) -> None:
        self.name = f"seeonline-ci-{secrets.token_hex(3)}"
        self.port = find_free_port()
        self.prometheus_port = find_free_port()
        self.api_key = secrets.token_hex(24)
        self.metrics_key = secrets.token_hex(24)
        # A session string names its data centre by IP: the sandbox gets a fixed one on a subnet of our own.
        subnet = f"10.{random.randint(100, 250)}.{random.randint(0, 255)}"
        self.env_file = workdir / "ci.env"
        self.env_file.write_text(
            f"POSTGRES_PASSWORD={secrets.token_hex(24)}\n"
            f"POSTGRES_MIGRATE_PASSWORD={secrets.token_hex(24)}\n"
            f"POSTGRES_APP_PASSWORD={secrets.token_hex(24)}\n"
            f"SEEONLINE_SECRET_KEY={secrets.token_hex(32)}\n"
            f"SEEONLINE_API_KEYS={self.api_key}\n"
            f"SEEONLINE_METRICS_KEY={self.metrics_key}\n"
            f"SEEONLINE_PORT={self.port}\n"
            f"SEEONLINE_IMAGE=localhost/seeonline:ci\n"
            f"PROMETHEUS_IMAGE={PROMETHEUS_IMAGE}\n"
            f"PROMETHEUS_PORT={self.prometheus_port}\n"
            f"SEEONLINE_TEST_SUBNET={subnet}.0/24\n"
            f"SEEONLINE_TEST_SANDBOX_IP={subnet}.250\n"
        )
        self.env_file.chmod(0o600)
        self.url = f"http://127.0.0.1:{self.port}"
        self.prometheus_url = f"http://127.0.0.1:{self.prometheus_port}"

    def command(self, *args: str) -> list[str]:
        """``docker compose`` for this project: compose.yaml, the test's additions, the monitoring profile."""
        files = ["-f", "compose.yaml", "-f", str(OVERRIDE)]
        return ["docker", "compose", "-p", self.name, "--env-file", str(self.env_file), *files, *args]

    def compose(self, *args: str, timeout: float = STEP_TIMEOUT) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "DOCKER_BUILDKIT": "0", "BUILDAH_FORMAT": "docker", "COMPOSE_BAKE": "false"}
        env["COMPOSE_PROFILES"] = "monitoring"  # every command sees the same services
        result = subprocess.run(
            self.command(*args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        return result

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", headers={"X-API-Key": self.api_key}, timeout=10)

    def post(self, path: str, body: dict[str, object]) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", json=body, headers={"X-API-Key": self.api_key}, timeout=10)

    def down(self) -> None:
        """Remove the project's containers, network and volumes (best effort: this runs in teardown)."""
        env = {**os.environ, "COMPOSE_PROFILES": "monitoring"}
        subprocess.run(
            self.command("down", "--volumes"), cwd=ROOT, env=env, capture_output=True, timeout=STEP_TIMEOUT, check=False
        )

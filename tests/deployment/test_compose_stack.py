"""The real deployment: build the image, run compose.yaml, and check it as an operator would.

Health, the create/read flow, non-root containers, the supervisor's metrics, and data that survives
``stop``/``start`` and ``down``/``up``. It needs a container engine behind ``docker compose``
(podman's API socket from ``shared/containers/setup-podman.sh``, or Docker); ``.ci/run`` starts one and
sets ``SEEONLINE_DEPLOYMENT_TEST=1``. Elsewhere it is skipped, saying why. Every step has a deadline.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from seeonline.local.embedded_postgres import find_free_port
from tests.polling import wait_until

ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT = 900  # the first build installs the dependencies; later builds reuse the layers
STEP_TIMEOUT = 180


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


pytestmark = pytest.mark.skipif(_why_not() is not None, reason=str(_why_not()))


class Stack:
    """One compose project of its own (name, port, secrets, volume), torn down at the end."""

    def __init__(self, workdir: Path) -> None:
        self.name = f"seeonline-ci-{secrets.token_hex(3)}"
        self.port = find_free_port()
        self.api_key = secrets.token_hex(24)
        self.env_file = workdir / "ci.env"
        self.env_file.write_text(
            f"POSTGRES_PASSWORD={secrets.token_hex(24)}\n"
            f"POSTGRES_MIGRATE_PASSWORD={secrets.token_hex(24)}\n"
            f"POSTGRES_APP_PASSWORD={secrets.token_hex(24)}\n"
            f"SEEONLINE_SECRET_KEY={secrets.token_hex(32)}\n"
            f"SEEONLINE_API_KEYS={self.api_key}\n"
            f"SEEONLINE_PORT={self.port}\n"
            f"SEEONLINE_IMAGE=localhost/seeonline:ci\n"
        )
        self.env_file.chmod(0o600)
        self.url = f"http://127.0.0.1:{self.port}"

    def compose(self, *args: str, timeout: float = STEP_TIMEOUT) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "DOCKER_BUILDKIT": "0", "BUILDAH_FORMAT": "docker", "COMPOSE_BAKE": "false"}
        command = ["docker", "compose", "-p", self.name, "--env-file", str(self.env_file), *args]
        result = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        return result

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", headers={"X-API-Key": self.api_key}, timeout=10)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("compose"))
    try:
        running.compose("up", "--build", "-d", "--wait", timeout=BUILD_TIMEOUT)
        yield running
    finally:
        subprocess.run(
            ["docker", "compose", "-p", running.name, "--env-file", str(running.env_file), "down", "--volumes"],
            cwd=ROOT,
            capture_output=True,
            timeout=STEP_TIMEOUT,
            check=False,
        )


def test_the_stack_is_healthy_and_serves_the_create_read_flow(stack: Stack) -> None:
    assert httpx.get(f"{stack.url}/health", timeout=10).status_code == 200
    assert httpx.get(f"{stack.url}/ready", timeout=10).status_code == 200
    assert stack.get("/telegram-users/").status_code == 200
    assert httpx.get(f"{stack.url}/telegram-users/", timeout=10).status_code == 401
    created = httpx.post(
        f"{stack.url}/telegram-users/", json={"telegram_id": 4242}, headers={"X-API-Key": stack.api_key}, timeout=10
    )
    assert created.status_code == 201, created.text
    assert stack.get(f"/telegram-users/{created.json()['id']}/").json()["telegram_id"] == 4242
    assert "seeonline_http_requests_total" in httpx.get(f"{stack.url}/metrics", timeout=10).text


def test_the_application_containers_run_as_the_unprivileged_user(stack: Stack) -> None:
    for service in ("api", "supervisor"):
        uid = stack.compose("exec", "-T", service, "id", "-u").stdout.strip()
        assert uid == "10001", f"{service} runs as uid {uid}"
    probe = "import urllib.request as u; print(u.urlopen('http://127.0.0.1:9100/', timeout=5).read().decode())"
    served = stack.compose("exec", "-T", "supervisor", "python3", "-c", probe).stdout
    assert "seeonline_supervisor_workers" in served


async def test_data_survives_stop_start_and_down_up(stack: Stack) -> None:
    created = httpx.post(
        f"{stack.url}/telegram-users/", json={"telegram_id": 4343}, headers={"X-API-Key": stack.api_key}, timeout=10
    )
    assert created.status_code == 201, created.text
    person = created.json()["id"]

    def readable() -> bool:
        try:
            return stack.get(f"/telegram-users/{person}/").status_code == 200
        except httpx.TransportError:
            return False

    stack.compose("stop")
    stack.compose("start")
    stack.compose("up", "-d", "--wait")
    await wait_until(readable, timeout=120, what="the person after stop/start")
    stack.compose("down")  # containers and network go, the volume stays
    stack.compose("up", "-d", "--wait")
    await wait_until(readable, timeout=120, what="the person after down/up")

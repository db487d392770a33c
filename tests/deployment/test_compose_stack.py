"""The real deployment: build the image, run compose.yaml, and check it as an operator would.

Health, the create/read flow, non-root containers and the supervisor's metrics (the monitoring profile is
``test_monitoring_profile``, persistence across restarts ``test_persistence``; the stack is
``stack.Stack``). Every step has a deadline.
"""

from __future__ import annotations

import httpx

from tests.deployment.stack import REQUIRES_ENGINE, Stack

pytestmark = REQUIRES_ENGINE


def test_the_stack_is_healthy_and_serves_the_create_read_flow(stack: Stack) -> None:
    assert httpx.get(f"{stack.url}/health", timeout=10).status_code == 200
    assert httpx.get(f"{stack.url}/ready", timeout=10).status_code == 200
    assert stack.get("/telegram-users/").status_code == 200
    assert httpx.get(f"{stack.url}/telegram-users/", timeout=10).status_code == 401
    created = stack.post("/telegram-users/", {"telegram_id": 4242})
    assert created.status_code == 201, created.text
    assert stack.get(f"/telegram-users/{created.json()['id']}/").json()["telegram_id"] == 4242
    assert httpx.get(f"{stack.url}/metrics", timeout=10).status_code == 401  # SEEONLINE_METRICS_KEY is set
    scraped = httpx.get(f"{stack.url}/metrics", headers={"Authorization": f"Bearer {stack.metrics_key}"}, timeout=10)
    assert "seeonline_http_requests_total" in scraped.text


def test_the_application_containers_run_as_the_unprivileged_user(stack: Stack) -> None:
    for service in ("api", "supervisor"):
        uid = stack.compose("exec", "-T", service, "id", "-u").stdout.strip()
        assert uid == "10001", f"{service} runs as uid {uid}"
    probe = "import urllib.request as u; print(u.urlopen('http://127.0.0.1:9100/', timeout=5).read().decode())"
    served = stack.compose("exec", "-T", "supervisor", "python3", "-c", probe).stdout
    assert "seeonline_supervisor_workers" in served

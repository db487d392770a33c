"""``--profile monitoring`` shows live numbers: Prometheus scrapes every target, and every query of the
Grafana dashboard answers with live values while trackers watch the sandbox's simulated people.

Prometheus is the stand-in image (Debian's package, ``prometheus/Containerfile``) with the real
``monitoring/prometheus.yml``, scraping through the API's ``SEEONLINE_METRICS_KEY``. Grafana has no image
or package here: ``tests/test_monitoring.py`` checks its provisioning files instead.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from tests.deployment.stack import REQUIRES_ENGINE, ROOT, Stack

pytestmark = REQUIRES_ENGINE

DASHBOARD = ROOT / "monitoring" / "grafana" / "dashboards" / "seeonline.json"
SENT = 60  # requests to one route, spread over the API's worker processes
T = TypeVar("T")


def poll(check: Callable[[], T], *, timeout: float, what: str, interval: float = 1.0) -> T:
    """``check()`` until it is truthy; fails after ``timeout`` seconds naming ``what`` and the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value: {value!r})")
        time.sleep(interval)


def query(stack: Stack, expr: str) -> list[dict[str, Any]]:
    """The instant vector ``expr`` evaluates to now."""
    answer = httpx.get(f"{stack.prometheus_url}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", (expr, answer)
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def values(stack: Stack, expr: str) -> list[float]:
    return [float(series["value"][1]) for series in query(stack, expr)]


def scalar(stack: Stack, expr: str) -> float:
    """The one value of an aggregated ``expr`` (0 while it has none)."""
    found = values(stack, expr)
    return found[0] if found else 0.0


def dashboard_queries() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def targets_up(stack: Stack) -> dict[str, str]:
    """Each scrape job's health (when every target of it is up: ``up``)."""
    answer = httpx.get(f"{stack.prometheus_url}/api/v1/targets", timeout=10).json()
    health: dict[str, str] = {}
    for target in answer["data"]["activeTargets"]:
        job = target["labels"]["job"]
        health[job] = target["health"] if health.get(job, "up") == "up" else health[job]
    return health


def sandbox_control(stack: Stack, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """Call the sandbox's control API, which listens on its container's loopback only."""
    script = (
        "import sys, urllib.request as u; data = sys.argv[3].encode() or None; "
        "r = u.Request('http://127.0.0.1:4444' + sys.argv[2], data=data, method=sys.argv[1], "
        "headers={'content-type': 'application/json'}); print(u.urlopen(r, timeout=10).read().decode())"
    )
    payload = json.dumps(body) if body is not None else ""
    answer = stack.compose("exec", "-T", "sandbox", "python3", "-c", script, method, path, payload).stdout
    return json.loads(answer)


def register_the_sandbox(stack: Stack) -> int:
    """The sandbox's trackers and a bot user following all its people, through the API. Returns the trackers."""
    manifest = sandbox_control(stack, "GET", "/manifest")
    for tracker in manifest["trackers"]:
        account = stack.post(
            "/tracker-accounts/",
            {
                "telegram_id": tracker["telegram_id"],
                "api_id": tracker["api_id"],
                "api_hash": tracker["api_hash"],
                "is_active": True,
                "is_auth": True,
            },
        )
        assert account.status_code == 201, account.text
        setting = stack.post(
            "/tracker-settings/",
            {
                "tracker_account_id": account.json()["id"],
                "phone_number": f"+{tracker['phone']}",
                "session_string": tracker["session_string"],
                "max_users": len(manifest["people"]),
            },
        )
        assert setting.status_code == 201, setting.text
    owner = stack.post("/telegram-users/", {"telegram_id": 9_100_001, "max_users": len(manifest["people"])})
    assert owner.status_code == 201, owner.text
    for person in manifest["people"]:
        follow = {"telegram_user_id": owner.json()["id"], "username": person["username"]}
        followed = stack.post("/tracked-users/", follow)
        assert followed.status_code == 201, followed.text
    return len(manifest["trackers"])


def not_live(stack: Stack, trackers: int) -> list[str]:
    """The dashboard's queries without a finite value now, and the numbers that must be moving but are not."""
    missing = [expr for expr in dashboard_queries() if not any(map(math.isfinite, values(stack, expr)))]
    moving = {
        "sum(rate(seeonline_http_requests_total[5m])) > 0": 1,
        "rate(seeonline_worker_transitions_total[1m]) > 0": 1,
        f"seeonline_worker_telegram_connected == {trackers}": 1,
        f'seeonline_supervisor_workers{{state="running"}} == {trackers}': 1,
        f'seeonline_trackers{{state="ok"}} == {trackers}': 1,
    }
    return missing + [expr for expr, count in moving.items() if len(query(stack, expr)) != count]


def test_every_target_is_up_and_every_dashboard_query_has_live_values(stack: Stack) -> None:
    poll(
        lambda: targets_up(stack) == {"seeonline-api": "up", "seeonline-supervisor": "up"},
        timeout=60,
        what="every scrape target up",
    )
    trackers = register_the_sandbox(stack)

    # Requests land on either API process; every scrape counts them all.
    route = 'sum(seeonline_http_requests_total{method="GET", path="/tracked-users"})'
    before, sent_at = scalar(stack, route), time.time()
    for _ in range(SENT):
        assert stack.get("/tracked-users/").status_code == 200  # a new connection each
    poll(lambda: scalar(stack, 'timestamp(up{job="seeonline-api"})') > sent_at, timeout=60, what="a scrape after")
    assert scalar(stack, route) >= before + SENT

    # The workers resync once connected; a dropped connection makes them resync again, between two scrapes.
    poll(
        lambda: scalar(stack, "sum(seeonline_worker_resync_seconds_count)") >= trackers,
        timeout=90,
        what="the workers' first resyncs, scraped",
    )
    assert sandbox_control(stack, "POST", "/connections/drop", {})["dropped"] >= 1
    assert stack.get("/telegram-users/999999999/").status_code == 404  # a second status among the requests
    last: list[str] = []

    def live() -> bool:
        last[:] = not_live(stack, trackers)
        return not last

    try:
        poll(live, timeout=120, what="live values", interval=2)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; without live values: {last}") from None

"""``/metrics`` is cached, cheap on big tables and protectable; weak API keys stop start-up; key guessing is slowed."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from seeonline.api.throttle import FailureThrottle
from seeonline.server.app import create_app
from seeonline.server.metrics import GAUGES_SQL
from seeonline.settings import SettingsError, load_settings
from tests.support.keys import API_KEY, SECRET_KEY

BIG_TABLES = {"telegram_users", "tracked_users", "targets", "online_statuses"}
METRICS_KEY = "metrics-key-0123456789abcdefgh"


def app_for(database_url: str, **extra: str) -> Any:
    return create_app(
        load_settings(
            {"DATABASE_URL": database_url, "SEEONLINE_API_KEYS": API_KEY, "SEEONLINE_SECRET_KEY": SECRET_KEY, **extra}
        )
    )


def gauge(text: str, name: str) -> float:
    return next(float(line.split()[-1]) for line in text.splitlines() if line.startswith(f"seeonline_{name} "))


async def test_a_scrape_is_cached(database_url: str, db: Any) -> None:
    async with AsyncTestClient(app=app_for(database_url, SEEONLINE_METRICS_CACHE_SECONDS="3600")) as http:
        first = (await http.get("/metrics")).text
        await db.execute("INSERT INTO telegram_users (telegram_id) SELECT i FROM generate_series(1, 5) AS i")
        # The database is not asked again (the request metrics after the gauges are live by design).
        assert gauge((await http.get("/metrics")).text, "telegram_users") == gauge(first, "telegram_users")
    async with AsyncTestClient(app=app_for(database_url, SEEONLINE_METRICS_CACHE_SECONDS="0")) as http:
        assert gauge((await http.get("/metrics")).text, "telegram_users") == 5


def scanned_rows(plan: dict[str, Any]) -> dict[str, float]:
    """Rows each big table's scan nodes actually read, summed over the plan."""
    rows: dict[str, float] = {}
    relation = plan.get("Relation Name")
    if relation in BIG_TABLES:
        rows[relation] = rows.get(relation, 0) + plan["Actual Rows"] * plan.get("Actual Loops", 1)
    for child in plan.get("Plans", []):
        for name, count in scanned_rows(child).items():
            rows[name] = rows.get(name, 0) + count
    return rows


async def test_a_scrape_reads_a_bounded_number_of_rows_of_big_tables(database_url: str, db: Any) -> None:
    await db.execute(
        "INSERT INTO telegram_users (telegram_id) SELECT i FROM generate_series(1, 25000) AS i;"
        "INSERT INTO targets (username) SELECT 'user_' || i FROM generate_series(1, 25000) AS i;"
        "ANALYZE telegram_users; ANALYZE targets;"
    )
    explained = json.loads(await db.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {GAUGES_SQL}"))
    rows = scanned_rows(explained[0]["Plan"])
    assert all(count <= 2 * 10_000 for count in rows.values()), rows  # counted up to the cap, never the table
    async with AsyncTestClient(app=app_for(database_url)) as http:
        text = (await http.get("/metrics")).text
    assert gauge(text, "telegram_users") >= 20_000  # the planner's estimate beyond the cap
    assert gauge(text, "targets_waiting") == 10_000  # counted up to the cap


async def test_the_metrics_key_protects_the_scrape(database_url: str) -> None:
    async with AsyncTestClient(app=app_for(database_url, SEEONLINE_METRICS_KEY=METRICS_KEY)) as http:
        assert (await http.get("/metrics")).status_code == 401
        assert (await http.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 401
        assert (await http.get("/metrics", headers={"X-API-Key": API_KEY})).status_code == 401  # not an API key
        assert (await http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_KEY}"})).status_code == 200
        assert (await http.get("/metrics", headers={"X-API-Key": METRICS_KEY})).status_code == 200


@pytest.mark.parametrize("keys", ["short-key-123", f"{API_KEY},tooshort-0123456789"])
def test_api_keys_shorter_than_24_characters_are_refused(keys: str) -> None:
    with pytest.raises(SettingsError, match=r"SEEONLINE_API_KEYS.*24"):
        load_settings({"SEEONLINE_API_KEYS": keys})


def test_the_api_command_names_the_short_key_at_start_up(database_url: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": database_url, "SEEONLINE_SECRET_KEY": SECRET_KEY}
    env["SEEONLINE_API_KEYS"] = "k" * 23
    result = subprocess.run(
        [sys.executable, "-m", "seeonline", "api"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "SEEONLINE_API_KEYS" in result.stderr
    assert "24" in result.stderr


async def test_repeated_wrong_keys_from_one_address_are_slowed_down(database_url: str) -> None:
    app = app_for(database_url)
    async with AsyncTestClient(app=app) as http:
        statuses = [
            (await http.get("/telegram-users/", headers={"X-API-Key": f"guess-{i:030d}"})).status_code
            for i in range(25)
        ]
        assert statuses[:20] == [401] * 20
        assert set(statuses[20:]) == {429}
        throttled = await http.get("/telegram-users/", headers={"X-API-Key": API_KEY})
        assert throttled.status_code == 429  # the right key gets no answer either: no faster oracle
        assert int(throttled.headers["retry-after"]) >= 1
        assert throttled.json()["code"] == "throttled"
    # Another address is not affected.
    transport = httpx.ASGITransport(app=app, client=("10.0.0.9", 1234))
    async with app.lifespan(), httpx.AsyncClient(transport=transport, base_url="http://test") as other:
        assert (await other.get("/telegram-users/", headers={"X-API-Key": API_KEY})).status_code == 200


def test_the_throttle_refills_and_its_memory_is_bounded() -> None:
    now = [0.0]
    throttle = FailureThrottle(burst=2, refill_per_second=0.5, max_addresses=100, clock=lambda: now[0])
    throttle.failed("a")
    throttle.failed("a")
    assert throttle.retry_after("a") == 2
    now[0] = 2.0
    assert throttle.retry_after("a") == 0
    for n in range(1000):
        throttle.failed(f"10.0.{n // 256}.{n % 256}")
    assert len(throttle) == 100

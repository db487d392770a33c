"""Benchmark the history routes (issue 13, "Performance") on the bench database of ``bench/api.py``.

    .venv/bin/python bench/history.py                      # embedded Postgres in a temp dir (durable)
    .venv/bin/python bench/history.py --database-url postgresql://postgres@127.0.0.1:5432/postgres

Seeds the 1,000,000-row bench database (``bench/seeding.py``), plus what history needs to tell known
from unknown time: every target watched by its tracker from before its first row, and every tracker's
worker connected every day except 23:00-24:00 UTC (so days have unknown hours). Then:

- timeline and daily (30 days), each ``wrk -c16`` for ``--duration`` s: targets p99 <= 20 ms;
- the PNG day chart: ``--charts`` (1,000) requests one after another, random user and day, measuring
  each round trip (query + render) and the API's RSS before and after: targets p95 <= 50 ms and growth
  <= 30 MB; then ``wrk -c16`` over the chart for throughput (no target).

Exit status 0 when every target is met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import random
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.api import API_KEY, Result, _seed, api_server, database, parse_wrk, wrk
from bench.seeding import Seeded

COVERAGE = """
INSERT INTO target_watches (target_id, tracker_account_id, started_at)
SELECT id, tracker_account_id, $1::timestamptz - interval '1 day' FROM targets WHERE tracker_account_id IS NOT NULL;
INSERT INTO tracker_uptimes (tracker_account_id, started_at, seen_at, ended)
SELECT a.id, d, d + interval '23 hours', true
FROM tracker_accounts a, generate_series(date_trunc('day', $1::timestamptz) - interval '1 day',
                                         date_trunc('day', now()), interval '1 day') d;
"""


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def add_coverage(url: str, seeded: Seeded) -> None:
    """Watches and uptimes for the seeded targets and trackers."""
    connection = await asyncpg.connect(url)
    try:
        for statement in COVERAGE.strip().split(";\n"):
            if statement.strip():
                await connection.execute(statement, seeded.status_start)
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


def day_args(seeded: Seeded) -> tuple[int, int]:
    """The first fully seeded UTC day (epoch) and how many days have data."""
    first = (seeded.status_start + datetime.timedelta(days=1)).replace(hour=0, minute=0, second=0)
    days = (datetime.datetime.now(datetime.UTC) - first).days
    return int(first.timestamp()), days


def run_wrk(title: str, script: str, args: list[str], options: argparse.Namespace, base_url: str) -> Result:
    """Warm up, then one measured wrk run at 16 connections."""
    result = Result(title, title)
    print(f"{title}: warm-up {options.warmup:g}s, run {options.duration:g}s ...", flush=True)
    wrk(base_url, script, options.warmup, 16, args)
    parse_wrk(wrk(base_url, script, options.duration, 16, args), result)
    print(f"    {result.rps:,.0f} req/s  p50 {result.p50_ms:.2f}  p99 {result.p99_ms:.2f}  errors {result.errors}")
    return result


def measure_charts(base_url: str, seeded: Seeded, count: int, api: object) -> tuple[list[float], float, float]:
    """``count`` PNG charts one after another: latencies (ms) and the API's RSS before and after (MB)."""
    first_day, days = day_args(seeded)
    low, high = seeded.tracked_ids
    latencies: list[float] = []
    with httpx.Client(base_url=base_url, headers={"X-API-Key": API_KEY}, timeout=30) as client:
        for _ in range(20):  # warm: caches, the static layers, the pool
            client.get(f"/tracked-users/{low}/chart/", params={"tz": "Europe/Berlin"})
        rss_before = api.memory_info().rss / 2**20  # type: ignore[attr-defined]
        for _ in range(count):
            day = datetime.datetime.fromtimestamp(first_day + random.randrange(days) * 86400, datetime.UTC)
            began = time.perf_counter()
            response = client.get(
                f"/tracked-users/{random.randint(low, high)}/chart/",
                params={"date": day.date().isoformat(), "tz": "Europe/Berlin"},
            )
            latencies.append((time.perf_counter() - began) * 1000)
            if response.status_code != 200 or response.content[:4] != b"\x89PNG":
                msg = f"chart failed: {response.status_code} {response.text[:200]}"
                raise RuntimeError(msg)
        rss_after = api.memory_info().rss / 2**20  # type: ignore[attr-defined]
    return latencies, rss_before, rss_after


def percentile(values: list[float], share: float) -> float:
    """The ``share`` quantile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    """Seed, measure, print the table; 0 when every target is met."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="a Postgres server to create seeonline_bench on")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--charts", type=int, default=1000)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="seeonline-bench-history-") as work, database(options, Path(work)) as url:
        from seeonline.database import migrations  # noqa: PLC0415 - after the server is up

        migrations.upgrade(url)
        seeded, server = asyncio.run(_seed(url))
        asyncio.run(add_coverage(url, seeded))
        print(f"seeded {seeded.statuses:,} status rows in {seeded.seconds:.1f}s on Postgres {server['server_version']}")
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        first_day, days = day_args(seeded)
        ids = [str(n) for n in seeded.tracked_ids]
        with api_server(url, port, Path(work)) as api:
            timeline = run_wrk(
                "timeline", "history_day.lua", [*ids, str(first_day), str(days), "timeline"], options, base_url
            )
            daily = run_wrk(
                "daily (30 days)", "history_daily.lua", [*ids, str(first_day), str(days)], options, base_url
            )
            latencies, rss_before, rss_after = measure_charts(base_url, seeded, options.charts, api)
            chart_load = run_wrk(
                "chart (PNG)", "history_day.lua", [*ids, str(first_day), str(days), "chart"], options, base_url
            )
    p95 = percentile(latencies, 0.95)
    growth = rss_after - rss_before
    rows = [
        ("timeline, wrk -c16", f"{timeline.rps:,.0f}", f"{timeline.p50_ms:.2f}", f"p99 {timeline.p99_ms:.2f}",
         "p99 <= 20 ms", timeline.p99_ms <= 20 and timeline.errors == 0),
        ("daily 30 days, wrk -c16", f"{daily.rps:,.0f}", f"{daily.p50_ms:.2f}", f"p99 {daily.p99_ms:.2f}",
         "p99 <= 20 ms", daily.p99_ms <= 20 and daily.errors == 0),
        (f"PNG chart, {len(latencies)} sequential", f"{1000 / statistics.mean(latencies):,.0f}",
         f"{statistics.median(latencies):.2f}", f"p95 {p95:.2f}", "p95 <= 50 ms", p95 <= 50),
        (f"API RSS over {len(latencies)} charts", "", "", f"{rss_before:.0f} -> {rss_after:.0f} MB",
         "growth <= 30 MB", growth <= 30),
        ("PNG chart, wrk -c16", f"{chart_load.rps:,.0f}", f"{chart_load.p50_ms:.2f}", f"p99 {chart_load.p99_ms:.2f}",
         "(throughput only)", chart_load.errors == 0),
    ]  # fmt: skip
    print("\n| scenario | req/s | p50 ms | tail | target | met |\n|---|---:|---:|---:|---|---|")
    for name, rps, p50, tail, target, met in rows:
        print(f"| {name} | {rps} | {p50} | {tail} | {target} | {'yes' if met else 'no'} |")
    return 0 if all(row[-1] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

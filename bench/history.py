"""Benchmark the history routes (issue 13, "Performance"): this checkout against a baseline, in one run.

    .venv/bin/python bench/history.py                          # embedded Postgres in a temp dir (durable)
    .venv/bin/python bench/history.py --database-url postgresql://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/history.py --baseline 156e4eb       # the code to compare with (default: main)
    .venv/bin/python bench/history.py --baseline none          # this checkout alone

Seeds the bench database of ``bench/api.py`` (1,000,000 status rows over 10,000 tracked users) into
``seeonline_bench_history``, plus what history needs to tell known from unknown time: every target watched by its
tracker from before its first row, and every tracker's worker connected every day except 23:00-24:00 UTC (so
days have unknown hours); the bot users live in Europe/Berlin, the zone the requests name. Then every tracked
user's days are stored as a running supervisor would have stored them (``store_days``, timed). The baseline gets
a copy (``seeonline_bench_history_base``), taken before that and brought to its own schema (``db downgrade`` to
its newest revision), with its own SQL routines (its ``db upgrade``) and its own API process, run from
``git archive REF``. Each scenario runs for both codes back
to back (alternating which goes first), so both meet the same neighbours on a shared machine:

- floor: ``GET /telegram-users/{id}/``, the cheapest route through the same stack: what any route reaches now;
- timeline and daily (30 days): ``wrk -c16`` for ``--duration`` s after ``--warmup`` s; target p99 <= 20 ms;
- the PNG chart: ``--charts`` (1,000) requests one after another (random user and day, one sequence for both),
  each round trip timed (query + render), the API's RSS before and after: p95 <= 50 ms, growth <= 30 MB; then
  ``wrk -c16`` over the chart (throughput, no target).

Every load also measures CPU time per request: the API process, its Postgres backends, the load generator (wrk,
or this process for the sequential charts) and the whole machine, other tenants included. On a closed loop of 16
connections a request waits behind the 15 others, so with c ms of CPU per request on n cores the mean latency
cannot be below 16 x c / n ms however the work is scheduled ("bound" in the table).

Exit status 0 when this checkout meets every target, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import random
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.api import API_KEY, Result, _seed, api_server, parse_wrk, wrk
from bench.seeding import Seeded
from seeonline.database import migrations
from seeonline.history.storing import store_days
from seeonline.local.embedded_postgres import EmbeddedPostgres

DATABASE = "seeonline_bench_history"  # not bench/api.py's: runs of both on one server leave each other alone
BASELINE_DATABASE = f"{DATABASE}_base"
REPOSITORY = Path(__file__).resolve().parent.parent
CONNECTIONS = 16
CORES = os.cpu_count() or 1
TZ = "Europe/Berlin"  # the bot users' zone (set by COVERAGE), which the requests name
COVERAGE = """
UPDATE tracked_users SET created_at = $1::timestamptz - interval '1 day';
UPDATE telegram_users SET timezone = 'Europe/Berlin';
INSERT INTO target_watches (target_id, tracker_account_id, started_at)
SELECT id, tracker_account_id, $1::timestamptz - interval '1 day' FROM targets WHERE tracker_account_id IS NOT NULL;
INSERT INTO tracker_uptimes (tracker_account_id, started_at, seen_at, ended)
SELECT a.id, d, d + interval '23 hours', true
FROM tracker_accounts a, generate_series(date_trunc('day', $1::timestamptz) - interval '1 day',
                                         date_trunc('day', now()), interval '1 day') d;
"""
MIGRATE = (
    "import sys, seeonline; from seeonline.database import migrations;"
    " migrations.upgrade(sys.argv[1]); print(seeonline.__file__)"
)


@dataclass
class Measured:
    """One load on one code: latency, throughput, CPU per request; RSS for the sequential charts."""

    scenario: str
    code: str  # baseline | after
    requests: int = 0
    rps: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    errors: int = 0
    api_cpu_ms: float = 0.0  # CPU time per request
    postgres_cpu_ms: float = 0.0
    load_cpu_ms: float = 0.0  # the load generator's
    machine_cpu_ms: float = 0.0  # every process on the machine, other tenants included
    rss_before_mb: float | None = None
    rss_after_mb: float | None = None

    @property
    def stack_cpu_ms(self) -> float:
        """What one request costs the API, Postgres and the load generator together."""
        return self.api_cpu_ms + self.postgres_cpu_ms + self.load_cpu_ms

    @property
    def bound_ms(self) -> float:
        """The least mean latency 16 closed-loop connections allow with this CPU per request on this machine."""
        return CONNECTIONS * self.stack_cpu_ms / CORES


@dataclass(frozen=True)
class Api:
    """One running API process and the database it serves."""

    code: str
    base_url: str
    process: psutil.Process
    database: str


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def with_database(url: str, database: str) -> str:
    """``url`` naming another database."""
    return urlunsplit(urlsplit(url)._replace(path="/" + database))


async def admin(url: str, *statements: str) -> None:
    """Run statements on the server's maintenance database."""
    connection = await asyncpg.connect(url, timeout=10)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


@contextlib.contextmanager
def postgres(options: argparse.Namespace, workdir: Path) -> Iterator[str]:
    """The admin URL of the given server, or of an embedded one started for the run."""
    if options.database_url:
        yield options.database_url.replace("postgresql+asyncpg://", "postgresql://")
        return
    server = EmbeddedPostgres(workdir / "postgres", durable=True)
    print(f"starting an embedded Postgres in {workdir / 'postgres'} (durable) ...", flush=True)
    server.start()
    try:
        yield server.url()
    finally:
        server.stop()


def export_baseline(ref: str, workdir: Path) -> Path | None:
    """The baseline's code (``git archive``) as a directory, or None when there is none to compare with."""
    if ref == "none":
        return None
    changed = subprocess.run(["git", "diff", "--quiet", ref, "--", "src", "db", "supervisor"], cwd=REPOSITORY,
                             check=False).returncode  # fmt: skip
    if changed == 0:
        print(f"the baseline {ref} has this checkout's code: measuring this checkout alone")
        return None
    target = workdir / "baseline"
    target.mkdir()
    archive = subprocess.run(["git", "archive", ref, "src", "db", "supervisor", "pyproject.toml"], cwd=REPOSITORY,
                             check=True, capture_output=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def migrate(url: str, code: Path | None) -> None:
    """``db upgrade`` with this checkout's code, or with the exported baseline's (checked to be the one loaded)."""
    env = dict(os.environ) | ({"PYTHONPATH": str(code / "src")} if code else {})
    loaded = subprocess.run([sys.executable, "-c", MIGRATE, url], env=env, cwd=code or REPOSITORY, check=True,
                            capture_output=True, text=True).stdout.strip().splitlines()[-1]  # fmt: skip
    expected = (code or REPOSITORY) / "src"
    if not Path(loaded).resolve().is_relative_to(expected.resolve()):
        msg = f"migrated with {loaded}, not the code in {expected}"
        raise RuntimeError(msg)


async def add_coverage(url: str, seeded: Seeded) -> None:
    """Watches and uptimes for the seeded targets and trackers."""
    connection = await asyncpg.connect(url)
    try:
        for statement in COVERAGE.strip().split(";\n"):
            if statement.strip():
                await connection.execute(statement, *([seeded.status_start] if "$1" in statement else []))
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


def day_args(seeded: Seeded) -> tuple[int, int]:
    """The first fully seeded UTC day (epoch) and how many days have data."""
    first = (seeded.status_start + datetime.timedelta(days=1)).replace(hour=0, minute=0, second=0)
    days = (datetime.datetime.now(datetime.UTC) - first).days
    return int(first.timestamp()), days


def postgres_backends(database: str) -> list[psutil.Process]:
    """The server processes serving ``database`` (``postgres: user database host ...``)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        title = (process.info["cmdline"] or [""])[0]
        if title.startswith("postgres:") and database in title.split():
            found.append(process)
    return found


def cpu_seconds(processes: list[psutil.Process]) -> float:
    """User and system CPU time of processes (those gone since count nothing)."""
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy so far."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def children_cpu() -> float:
    """CPU seconds of this process's finished children (wrk)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """CPU per request of the API, its backends, the load generator and the machine over one load."""

    def __init__(self, api: Api, *, load_is_self: bool) -> None:
        self.api, self.backends, self.load_is_self = api, postgres_backends(api.database), load_is_self
        self.start = self._sample()

    def _sample(self) -> tuple[float, float, float, float]:
        load = time.process_time() if self.load_is_self else children_cpu()
        return cpu_seconds([self.api.process]), cpu_seconds(self.backends), load, machine_busy()

    def fill(self, measured: Measured) -> None:
        """Per-request CPU since the meter started, into ``measured`` (its ``requests`` set)."""
        deltas = [after - before for after, before in zip(self._sample(), self.start, strict=True)]
        per_request = [1000 * delta / max(measured.requests, 1) for delta in deltas]
        measured.api_cpu_ms, measured.postgres_cpu_ms, measured.load_cpu_ms, measured.machine_cpu_ms = per_request


def run_wrk(api: Api, scenario: str, script: str, args: list[str], options: argparse.Namespace) -> Measured:
    """Warm up (pool connections, cached plans, chart layers), then one measured ``wrk -c16`` run."""
    wrk(api.base_url, script, options.warmup, CONNECTIONS, args)
    meter = CpuMeter(api, load_is_self=False)
    output = wrk(api.base_url, script, options.duration, CONNECTIONS, args)
    parsed = Result(scenario, scenario)
    parse_wrk(output, parsed)
    measured = Measured(scenario, api.code, parsed.requests, parsed.rps, parsed.p50_ms, errors=parsed.errors)
    meter.fill(measured)
    for line in output.splitlines():
        if line.startswith("PERCENTILES_US"):
            values = dict(part.split("=") for part in line.split()[1:])
            measured.p50_ms, measured.p95_ms, measured.p99_ms = (int(values[k]) / 1000 for k in ("p50", "p95", "p99"))
    report(measured)
    return measured


def measure_charts(api: Api, requests: list[tuple[int, str]]) -> Measured:
    """PNG charts one after another: each round trip, the API's RSS before and after, CPU per chart."""
    latencies: list[float] = []
    with httpx.Client(base_url=api.base_url, headers={"X-API-Key": API_KEY}, timeout=30) as client:
        for user, day in requests[:20]:  # warm: the pool, cached plans, the layout's layers
            client.get(f"/tracked-users/{user}/chart/", params={"date": day, "tz": TZ})
        measured = Measured(SEQUENTIAL_CHARTS, api.code, len(requests))
        measured.rss_before_mb = api.process.memory_info().rss / 2**20
        meter = CpuMeter(api, load_is_self=True)
        began = time.monotonic()
        for user, day in requests:
            sent = time.perf_counter()
            response = client.get(f"/tracked-users/{user}/chart/", params={"date": day, "tz": TZ})
            latencies.append((time.perf_counter() - sent) * 1000)
            if response.status_code != 200 or response.content[:4] != b"\x89PNG":
                msg = f"chart failed: {response.status_code} {response.text[:200]}"
                raise RuntimeError(msg)
        measured.rps = len(requests) / (time.monotonic() - began)
        meter.fill(measured)
        measured.rss_after_mb = api.process.memory_info().rss / 2**20
    ordered = sorted(latencies)
    measured.p50_ms, measured.p95_ms, measured.p99_ms = (
        ordered[min(len(ordered) - 1, int(share * len(ordered)))] for share in (0.50, 0.95, 0.99)
    )
    report(measured)
    return measured


def report(measured: Measured) -> None:
    """A progress line."""
    memory = f"  RSS {measured.rss_before_mb:.0f} -> {measured.rss_after_mb:.0f} MB" if measured.rss_after_mb else ""
    print(f"  {measured.code:8s} {measured.rps:8,.0f} req/s  p50 {measured.p50_ms:6.2f}  p95 {measured.p95_ms:6.2f}"
          f"  p99 {measured.p99_ms:6.2f} ms  CPU/request: API {measured.api_cpu_ms:.3f}  Postgres "
          f"{measured.postgres_cpu_ms:.3f}  load {measured.load_cpu_ms:.3f}  machine {measured.machine_cpu_ms:.3f} ms"
          f"  errors {measured.errors}{memory}", flush=True)  # fmt: skip


TIMELINE, DAILY = "timeline, wrk -c16", "daily (30 days), wrk -c16"
SEQUENTIAL_CHARTS = "PNG chart, sequential"
TARGETS: dict[str, tuple[str, Callable[[Measured], bool]]] = {  # scenario -> what it must meet; whether met
    TIMELINE: ("p99 <= 20 ms", lambda m: m.p99_ms <= 20 and m.errors == 0),
    DAILY: ("p99 <= 20 ms", lambda m: m.p99_ms <= 20 and m.errors == 0),
    SEQUENTIAL_CHARTS: ("p95 <= 50 ms, RSS growth <= 30 MB",
                        lambda m: m.p95_ms <= 50 and (m.rss_after_mb or 0) - (m.rss_before_mb or 0) <= 30),
}  # fmt: skip


def target_of(measured: Measured) -> tuple[str, bool | None]:
    """The target a row is held to, and whether it is met (None: no target)."""
    if measured.scenario not in TARGETS:
        return "", None
    what, met = TARGETS[measured.scenario]
    return what, bool(met(measured))


def table(rows: list[Measured]) -> None:
    """The Markdown table of every measurement."""
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"\n{CORES} cores, load average now {load}; CPU columns are milliseconds of CPU per request; bound ="
        f" {CONNECTIONS} x (API + Postgres + load) / {CORES} cores, the least mean latency that CPU allows on a"
        f" closed loop of {CONNECTIONS}.\n"
    )
    print(
        "| scenario | code | req/s | p50 ms | p95 ms | p99 ms | API | Postgres | load | machine | bound ms | RSS MB |"
        " target | met |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for m in rows:
        what, met = target_of(m)
        rss = f"{m.rss_before_mb:.0f} -> {m.rss_after_mb:.0f}" if m.rss_after_mb else ""
        bound = f"{m.bound_ms:.1f}" if "wrk" in m.scenario else ""  # a closed loop of 16 only under wrk
        print(f"| {m.scenario} | {m.code} | {m.rps:,.0f} | {m.p50_ms:.2f} | {m.p95_ms:.2f} | {m.p99_ms:.2f} | "
              f"{m.api_cpu_ms:.3f} | {m.postgres_cpu_ms:.3f} | {m.load_cpu_ms:.3f} | {m.machine_cpu_ms:.3f} | "
              f"{bound} | {rss} | {what} | {'' if met is None else 'yes' if met else 'no'} |")  # fmt: skip


def seed_databases(admin_url: str, baseline: Path | None) -> tuple[Seeded, str]:
    """The seeded database (and the baseline's copy with its routines); the server's version."""
    url = with_database(admin_url, DATABASE)
    drops = [f"DROP DATABASE IF EXISTS {name} WITH (FORCE)" for name in (DATABASE, BASELINE_DATABASE)]
    asyncio.run(admin(admin_url, *drops, f"CREATE DATABASE {DATABASE}"))
    migrate(url, None)
    seeded, server = asyncio.run(_seed(url))
    asyncio.run(add_coverage(url, seeded))
    print(f"seeded {seeded.statuses:,} status rows in {seeded.seconds:.1f}s on Postgres {server['server_version']}")
    if baseline is not None:
        asyncio.run(admin(admin_url, f"CREATE DATABASE {BASELINE_DATABASE} TEMPLATE {DATABASE}"))
        base_url = with_database(admin_url, BASELINE_DATABASE)
        migrations.downgrade(base_url, head_revision(baseline))  # its own schema, should this one be newer
        migrate(base_url, baseline)
    stored, seconds = asyncio.run(store_all_days(url))
    print(f"stored the past days of {stored:,} tracked users in {seconds:.1f}s (the supervisor's housekeeping)")
    return seeded, server["server_version"]


def head_revision(code: Path) -> str:
    """The newest revision among a checkout's migrations (files named ``NNNN_*.py``)."""
    return max(path.name.split("_", 1)[0] for path in (code / "db" / "versions").glob("[0-9]*_*.py"))


async def store_all_days(url: str) -> tuple[int, float]:
    """What a running supervisor would have stored by now: every tracked user's past days."""
    began = time.monotonic()
    connection = await asyncpg.connect(url)
    total = 0
    try:
        while done := await store_days(connection, budget_s=60.0, limit=1000):
            total += done
            await connection.execute("ANALYZE history_days")  # what autovacuum does for a growing table
        await connection.execute("VACUUM ANALYZE history_days")
    finally:
        await connection.close()
    return total, time.monotonic() - began


def main() -> int:
    """Seed, start the APIs, measure each scenario for both codes, print the table; 0 when the targets are met."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="a Postgres server to create the bench databases on")
    parser.add_argument("--baseline", default="main", help="a git ref to compare with, or 'none' (default: main)")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--charts", type=int, default=1000)
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    options = parser.parse_args()
    rows: list[Measured] = []
    with tempfile.TemporaryDirectory(prefix="seeonline-bench-history-") as work, postgres(options, Path(work)) as url:
        baseline = export_baseline(options.baseline, Path(work))
        try:
            seeded, _ = seed_databases(url, baseline)
            rows = measure(url, seeded, baseline, Path(work), options)
        finally:
            if not options.keep_database:
                drops = [f"DROP DATABASE IF EXISTS {name} WITH (FORCE)" for name in (DATABASE, BASELINE_DATABASE)]
                with contextlib.suppress(Exception):
                    asyncio.run(admin(url, *drops))
    table(rows)
    if options.json:
        options.json.write_text(json.dumps([asdict(row) for row in rows], indent=2))
    return 0 if all(target_of(row)[1] is not False for row in rows if row.code == "after") else 1


def measure(url: str, seeded: Seeded, baseline: Path | None, work: Path, options: argparse.Namespace) -> list[Measured]:
    """Every scenario on both codes, back to back."""
    first_day, days = day_args(seeded)
    ids = [str(n) for n in seeded.tracked_ids]
    rng = random.Random(13)
    low, high = seeded.tracked_ids
    charts = [
        (rng.randint(low, high), datetime.date.fromtimestamp(first_day + rng.randrange(days) * 86400).isoformat())
        for _ in range(options.charts)
    ]
    loads = [
        ("floor: GET /telegram-users/{id}/, wrk -c16", "telegram_user.lua", [str(n) for n in seeded.person_ids]),
        (TIMELINE, "history_day.lua", [*ids, str(first_day), str(days), "timeline"]),
        (DAILY, "history_daily.lua", [*ids, str(first_day), str(days)]),
        (SEQUENTIAL_CHARTS, None, []),
        ("PNG chart, wrk -c16", "history_day.lua", [*ids, str(first_day), str(days), "chart"]),
    ]
    rows: list[tuple[int, int, Measured]] = []
    with contextlib.ExitStack() as apis:
        running = []
        for code, database, source in (("baseline", BASELINE_DATABASE, baseline), ("after", DATABASE, REPOSITORY)):
            if source is None:
                continue
            port = free_port()
            env = {"PYTHONPATH": str(source / "src")} if code == "baseline" else {}
            process = apis.enter_context(api_server(with_database(url, database), port, work, extra_env=env, name=code))
            running.append(Api(code, f"http://127.0.0.1:{port}", process, database))
        for index, (scenario, script, args) in enumerate(loads):
            print(f"{scenario} (load average {os.getloadavg()[0]:.1f}) ...", flush=True)
            for api in running if index % 2 == 0 else running[::-1]:
                measured = (
                    measure_charts(api, charts) if script is None else run_wrk(api, scenario, script, args, options)
                )
                rows.append((index, 0 if api.code == "baseline" else 1, measured))
    return [measured for _, _, measured in sorted(rows, key=lambda row: row[:2])]


if __name__ == "__main__":
    sys.exit(main())

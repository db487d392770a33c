"""Benchmark the SeeOnline API: one API process, a seeded database, wrk with 16 keep-alive connections.

    .venv/bin/python bench/api.py [--duration 10] [--database-url postgresql://postgres@127.0.0.1:5432/test]

With ``--database-url`` the benchmark (re)creates the database ``seeonline_bench`` on that server;
without it, it starts an embedded Postgres (durable) in a temporary directory. It seeds the
database with SQL (bench/seeding.py), migrates it, starts ``seeonline api`` as a subprocess, and
drives each scenario with ``wrk -t1 -c16 --latency`` and a Lua script from bench/wrk/. Then it
streams the unpaginated list of all status rows while sampling the API's RSS. Everything it
started is stopped on the way out, also after an error, Ctrl-C or its own time limit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.profile_summary import summarize
from bench.seeding import Seeded, check_counters, seed
from seeonline.database import migrations
from seeonline.local.embedded_postgres import EmbeddedPostgres, find_free_port
from seeonline.logging import configure_logging

BENCH_DIR = Path(__file__).resolve().parent
WRK_DIR = BENCH_DIR / "wrk"
DATABASE_NAME = "seeonline_bench"
API_KEY = "bench-api-key-" + secrets.token_hex(8)
SECRET_KEY = secrets.token_hex(32)
_PR_SET_PDEATHSIG = 1


class BenchTimeoutError(Exception):
    """The benchmark ran past its own time limit."""


@dataclass(frozen=True)
class Scenario:
    """One wrk run: a Lua script, its arguments and the target it must meet."""

    key: str
    title: str
    script: str
    min_rps: float
    max_p99_ms: float | None = None
    note: str = ""


SCENARIOS = (
    Scenario("a", "GET /telegram-users/{id}/", "telegram_user.lua", 3500, 10),
    Scenario("b", "GET /tracked-users/?telegram_user__telegram_id=X (10 rows)", "tracked_by_owner.lua", 2500),
    Scenario(
        "c", "GET /online-statuses/?tracked_user_id&created_at_after&_before (10 rows)", "statuses_window.lua", 2500
    ),
    Scenario("d", "POST /online-statuses/", "status_create.lua", 2500),
    Scenario(
        "e",
        "POST /tracked-users/ then DELETE /tracked-users/{id}/ (slot engine)",
        "subscribe_cycle.lua",
        1000,
        30,
        note="req/s counts POSTs and DELETEs alike; pairs/s is half",
    ),
)


@dataclass
class Result:
    """What one scenario measured."""

    key: str
    title: str
    rps: float = 0.0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    requests: int = 0
    errors: int = 0  # non-2xx responses plus socket errors
    api_cpu_percent: float = 0.0  # of one core
    machine_cpu_percent: float = 0.0  # of all cores
    target: str = ""
    passed: bool = False
    raw: str = field(default="", repr=False)


@dataclass
class StreamResult:
    """The unpaginated list of every status row."""

    rows: int = 0
    expected_rows: int = 0
    bytes: int = 0
    seconds: float = 0.0
    rss_before_mb: float = 0.0
    rss_peak_mb: float = 0.0
    rss_after_mb: float = 0.0
    samples: int = 0
    passed: bool = False


# -- plumbing ----------------------------------------------------------------------------------------------


def _on_alarm(_signum: int, _frame: Any) -> None:
    raise BenchTimeoutError


def _on_term(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: SIGTERM it if this benchmark dies without cleaning up.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _stop_process(proc: subprocess.Popen[bytes], name: str, grace: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()  # uvicorn shuts down gracefully on SIGTERM: the lifespan closes the pool
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        print(f"  {name} did not stop in {grace:.0f}s; killing it", file=sys.stderr)
        proc.kill()
        proc.wait(timeout=grace)


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def _run_async(coro: Any) -> Any:
    return asyncio.run(coro)


@contextlib.contextmanager
def database(args: argparse.Namespace, workdir: Path) -> Iterator[str]:
    """The URL of an empty ``seeonline_bench`` database, on the given server or an embedded one."""
    if args.database_url:
        admin_url = args.database_url.replace("postgresql+asyncpg://", "postgresql://")
        url = _with_database(admin_url, DATABASE_NAME)

        async def admin(sql: str) -> None:
            connection = await asyncpg.connect(admin_url, timeout=10)
            try:
                await connection.execute(sql)
            finally:
                await connection.close()

        _run_async(admin(f"DROP DATABASE IF EXISTS {DATABASE_NAME} WITH (FORCE)"))
        _run_async(admin(f"CREATE DATABASE {DATABASE_NAME}"))
        try:
            yield url
        finally:
            if not args.keep_database:
                with contextlib.suppress(Exception):
                    _run_async(admin(f"DROP DATABASE IF EXISTS {DATABASE_NAME} WITH (FORCE)"))
        return
    data_dir = workdir / "postgres"
    server = EmbeddedPostgres(data_dir, durable=True)
    print(f"starting an embedded Postgres in {data_dir} (durable) ...", flush=True)
    server.start()
    try:
        yield server.create_database(DATABASE_NAME)
    finally:
        server.stop()


@contextlib.contextmanager
def api_server(
    database_url: str, port: int, workdir: Path, *, extra_env: dict[str, str] | None = None, name: str = "api"
) -> Iterator[psutil.Process]:
    """``seeonline api`` on 127.0.0.1:port; yields its process once /health answers.

    ``extra_env`` is added to its environment (``PYTHONPATH`` runs another checkout's code); its log is
    ``workdir/<name>.log``.
    """
    env = dict(os.environ)
    env |= {"DATABASE_URL": database_url, "SEEONLINE_API_KEYS": API_KEY, "SEEONLINE_SECRET_KEY": SECRET_KEY}
    env |= extra_env or {}
    env.setdefault("SEEONLINE_LOG_LEVEL", "warning")
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "seeonline", "api", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - no threads yet that could hold locks
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                msg = f"the API exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}"
                raise RuntimeError(msg)
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/ready", headers={"X-API-Key": API_KEY}).status_code == 200:
                    break
            if time.monotonic() > deadline:
                msg = f"the API did not become ready in 30 s:\n{log_path.read_text()[-3000:]}"
                raise RuntimeError(msg)
            time.sleep(0.1)
        yield psutil.Process(proc.pid)
    finally:
        _stop_process(proc, "API")
        tail = log_path.read_text(errors="replace").strip()
        if tail:
            print(f"  API log ({log_path}), last lines:\n    " + "\n    ".join(tail.splitlines()[-10:]))


# -- wrk ---------------------------------------------------------------------------------------------------

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        msg = f"unparsable wrk duration {text!r}"
        raise ValueError(msg)
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str, result: Result) -> None:
    """Fill ``result`` from ``wrk --latency`` output."""
    result.raw = output
    for percent, attr in (("50", "p50_ms"), ("90", "p90_ms"), ("99", "p99_ms")):
        match = re.search(rf"^\s+{percent}%\s+(\S+)", output, re.MULTILINE)
        if match:
            setattr(result, attr, _ms(match.group(1)))
    latency = re.search(r"^\s+Latency\s+\S+\s+\S+\s+(\S+)", output, re.MULTILINE)
    if latency:
        result.max_ms = _ms(latency.group(1))
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    result.rps = float(rps.group(1)) if rps else 0.0
    total = re.search(r"^\s+(\d+) requests in", output, re.MULTILINE)
    result.requests = int(total.group(1)) if total else 0
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    result.errors = (int(non_2xx.group(1)) if non_2xx else 0) + (
        sum(int(n) for n in sockets.groups()) if sockets else 0
    )


def wrk(base_url: str, script: str, seconds: float, connections: int, script_args: list[str]) -> str:
    """Run wrk once and return its output."""
    command = [
        "wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "5s", "--latency",
        "-s", str(WRK_DIR / script), base_url, "--", API_KEY, *script_args,
    ]  # fmt: skip
    env = dict(os.environ, BENCH_WRK_DIR=str(WRK_DIR))
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 30, check=False)
    if done.returncode != 0:
        msg = f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}"
        raise RuntimeError(msg)
    if done.stderr.strip():
        print("  wrk stderr: " + done.stderr.strip().replace("\n", "\n    "), file=sys.stderr)
    return done.stdout


def script_args(scenario: Scenario, seeded: Seeded) -> list[str]:
    """The Lua script's arguments for ``scenario`` (a fresh run tag per call for unique usernames)."""
    if scenario.key == "a":
        return [str(n) for n in seeded.person_ids]
    if scenario.key == "b":
        return [str(n) for n in seeded.person_telegram_ids]
    if scenario.key == "c":
        return [
            *(str(n) for n in seeded.tracked_ids),
            str(int(seeded.status_start.timestamp())),
            str(int(seeded.status_step.total_seconds())),
            str(seeded.statuses // (seeded.tracked_ids[1] - seeded.tracked_ids[0] + 1)),
        ]
    if scenario.key == "d":
        return [str(n) for n in seeded.tracked_ids]
    return [*(str(n) for n in seeded.person_ids), secrets.token_hex(3)]


def start_profiler(args: argparse.Namespace, api: psutil.Process, key: str) -> subprocess.Popen[bytes] | None:
    """``py-spy record`` on the API for the measured run, when ``--profile`` asks for it."""
    if args.profile is None:
        return None
    args.profile.mkdir(parents=True, exist_ok=True)
    command = [
        args.py_spy, "record", "--pid", str(api.pid), "--duration", str(max(1, int(args.duration) - 1)),
        "--rate", "200", "--format", "raw", "--nonblocking", "--output", str(args.profile / f"{key}.txt"),
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish_profiler(profiler: subprocess.Popen[bytes], output: Path) -> None:
    """Wait for py-spy and print the profile's summary."""
    try:
        _, stderr = profiler.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        profiler.kill()
        profiler.wait()
        print("    py-spy did not finish in time", file=sys.stderr)
        return
    if profiler.returncode != 0 or not output.exists():
        print(f"    py-spy failed: {stderr.decode(errors='replace').strip()[-500:]}", file=sys.stderr)
        return
    print("    " + "\n    ".join(summarize(output, top=12)), flush=True)


def run_scenario(
    scenario: Scenario, seeded: Seeded, base_url: str, api: psutil.Process, args: argparse.Namespace
) -> Result:
    """Warm up, then measure one scenario."""
    target = f">= {scenario.min_rps:,.0f} req/s" + (
        f", p99 <= {scenario.max_p99_ms:g} ms" if scenario.max_p99_ms is not None else ""
    )
    result = Result(scenario.key, scenario.title, target=target)
    print(f"({scenario.key}) {scenario.title}: warm-up {args.warmup:g}s, run {args.duration:g}s ...", flush=True)
    if args.warmup > 0:
        wrk(base_url, scenario.script, args.warmup, args.connections, script_args(scenario, seeded))
    profiler = start_profiler(args, api, scenario.key)
    cpu_before = api.cpu_times()
    psutil.cpu_percent()
    began = time.monotonic()
    output = wrk(base_url, scenario.script, args.duration, args.connections, script_args(scenario, seeded))
    wall = time.monotonic() - began
    if profiler is not None:
        finish_profiler(profiler, args.profile / f"{scenario.key}.txt")
    cpu_after = api.cpu_times()
    result.machine_cpu_percent = psutil.cpu_percent()
    used = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    result.api_cpu_percent = 100 * used / wall
    parse_wrk(output, result)
    result.passed = (
        result.rps >= scenario.min_rps
        and (scenario.max_p99_ms is None or result.p99_ms <= scenario.max_p99_ms)
        and result.errors == 0
    )
    print(
        f"    {result.rps:,.0f} req/s  p50 {result.p50_ms:.2f} ms  p99 {result.p99_ms:.2f} ms  "
        f"errors {result.errors}  API CPU {result.api_cpu_percent:.0f}%",
        flush=True,
    )
    return result


# -- the unpaginated stream ------------------------------------------------------------------------------


def measure_stream(base_url: str, api: psutil.Process, expected_rows: int, timeout: float) -> StreamResult:
    """Download GET /online-statuses/ (no limit: streamed) while sampling the API's RSS every 10 ms."""
    print(f"(stream) GET /online-statuses/ of all {expected_rows:,} rows ...", flush=True)
    result = StreamResult(expected_rows=expected_rows)
    result.rss_before_mb = api.memory_info().rss / 2**20
    peak = [api.memory_info().rss]
    samples = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            with contextlib.suppress(psutil.Error):
                peak[0] = max(peak[0], api.memory_info().rss)
                samples[0] += 1
            stop.wait(0.01)

    sampler = threading.Thread(target=sample, name="rss-sampler", daemon=True)
    sampler.start()
    marker = b'"tracked_user_id"'
    carry = b""
    first = last = b""
    began = time.monotonic()
    try:
        with (
            httpx.Client(timeout=httpx.Timeout(timeout, connect=5)) as client,
            client.stream("GET", f"{base_url}/online-statuses/", headers={"X-API-Key": API_KEY}) as response,
        ):
            response.raise_for_status()
            for chunk in response.iter_raw(256 * 1024):
                if not first:
                    first = chunk[:1]
                last = chunk[-1:]
                result.bytes += len(chunk)
                window = carry + chunk
                result.rows += window.count(marker)
                carry = window[-(len(marker) - 1) :]
    finally:
        result.seconds = time.monotonic() - began
        stop.set()
        sampler.join()
    result.rss_peak_mb = peak[0] / 2**20
    result.rss_after_mb = api.memory_info().rss / 2**20
    result.samples = samples[0]
    result.passed = first == b"[" and last == b"]" and result.rows == expected_rows and result.rss_peak_mb < 200
    print(
        f"    {result.rows:,} rows, {result.bytes / 2**20:,.1f} MiB in {result.seconds:.1f} s; API RSS "
        f"{result.rss_before_mb:.0f} -> peak {result.rss_peak_mb:.0f} MB ({result.samples} samples)",
        flush=True,
    )
    return result


# -- main ------------------------------------------------------------------------------------------------


async def _seed(url: str) -> tuple[Seeded, dict[str, str]]:
    connection = await asyncpg.connect(url, timeout=10)
    try:
        seeded = await seed(connection, SECRET_KEY)
        server = {
            name: await connection.fetchval(f"SHOW {name}")
            for name in ("server_version", "shared_buffers", "synchronous_commit", "fsync", "max_connections")
        }
        return seeded, server
    finally:
        await connection.close()


async def _statuses(url: str) -> int:
    connection = await asyncpg.connect(url, timeout=10)
    try:
        count: int = await connection.fetchval("SELECT count(*) FROM online_statuses")
        return count
    finally:
        await connection.close()


async def _counters(url: str) -> list[str]:
    connection = await asyncpg.connect(url, timeout=10)
    try:
        problems: list[str] = await check_counters(connection)
        return problems
    finally:
        await connection.close()


def print_table(results: list[Result], stream: StreamResult | None) -> None:
    """The results as a Markdown table (paste it into bench/README.md)."""
    print()
    print("| scenario | req/s | p50 ms | p99 ms | max ms | errors | API CPU | target | met |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---|")
    for r in results:
        print(
            f"| ({r.key}) {r.title} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.max_ms:.1f} | {r.errors} "
            f"| {r.api_cpu_percent:.0f}% | {r.target} | {'yes' if r.passed else 'NO'} |"
        )
    notes = {scenario.key: scenario.note for scenario in SCENARIOS if scenario.note}
    for r in results:
        if r.key in notes:
            print(f"\n({r.key}): {notes[r.key]} ({r.rps / 2:,.0f} create+delete pairs/s)")
    if stream is not None:
        print()
        print("| stream | rows | MiB | seconds | rows/s | API RSS before | peak | after | met (< 200 MB) |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
        rate = stream.rows / stream.seconds if stream.seconds else 0
        print(
            f"| GET /online-statuses/ (unpaginated) | {stream.rows:,} | {stream.bytes / 2**20:,.1f} "
            f"| {stream.seconds:.1f} | {rate:,.0f} | {stream.rss_before_mb:.0f} MB | {stream.rss_peak_mb:.0f} MB "
            f"| {stream.rss_after_mb:.0f} MB | {'yes' if stream.passed else 'NO'} |"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10, help="seconds per measured wrk run (default 10)")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of unmeasured wrk run before each")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections (default 16)")
    parser.add_argument(
        "--database-url", help="a Postgres server to create the database seeonline_bench on (default: embedded)"
    )
    parser.add_argument("--keep-database", action="store_true", help="do not drop seeonline_bench afterwards")
    parser.add_argument("--port", type=int, default=0, help="API port (default: a free one)")
    parser.add_argument(
        "--scenarios", default="a,b,c,stream,d,e", help="comma-separated subset of a,b,c,stream,d,e, run in order"
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument(
        "--profile", type=Path, help="record the API with py-spy during each measured run into this directory"
    )
    parser.add_argument("--py-spy", default="py-spy", help="the py-spy executable for --profile (default: on PATH)")
    parser.add_argument("--time-limit", type=float, help="abort after this many seconds (default: derived)")
    args = parser.parse_args(argv)
    args.scenarios = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = set(args.scenarios) - {"a", "b", "c", "d", "e", "stream"}
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if args.time_limit is None:
        args.time_limit = 300 + len(args.scenarios) * (args.duration + args.warmup + 15)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 when every target was met."""
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get update && apt-get install -y wrk", file=sys.stderr)
        return 2
    if args.profile is not None and shutil.which(args.py_spy) is None:
        print(f"--profile needs py-spy ({args.py_spy!r} not found): pip install py-spy", file=sys.stderr)
        return 2
    load_before = os.getloadavg()[0]
    if load_before > 1.0:
        print(f"warning: load average {load_before:.1f} on {os.cpu_count()} CPUs; other work will skew the numbers")
    configure_logging("warning")
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGTERM, _on_term)
    signal.alarm(int(args.time_limit))
    workdir = Path(tempfile.mkdtemp(prefix="seeonline-bench-"))
    workdir.chmod(0o755)  # an embedded server runs as an unprivileged user when we are root
    results: list[Result] = []
    stream: StreamResult | None = None
    counter_errors: list[str] = []
    meta: dict[str, Any] = {
        "duration": args.duration,
        "connections": args.connections,
        "load_average_before": round(load_before, 2),
    }
    try:
        with database(args, workdir) as url:
            print(f"migrating {url} ...", flush=True)
            migrations.upgrade(url)
            print("seeding ...", flush=True)
            seeded, server = _run_async(_seed(url))
            meta |= {"postgres": server, "seed_seconds": round(seeded.seconds, 1), "embedded": not args.database_url}
            print(
                f"    seeded in {seeded.seconds:.1f} s: {seeded.statuses:,} statuses; Postgres "
                f"{server['server_version']}, synchronous_commit={server['synchronous_commit']}",
                flush=True,
            )
            port = args.port or find_free_port()
            base_url = f"http://127.0.0.1:{port}"
            with api_server(url, port, workdir) as api:
                meta["api_rss_idle_mb"] = round(api.memory_info().rss / 2**20, 1)
                by_key = {scenario.key: scenario for scenario in SCENARIOS}
                for name in args.scenarios:
                    if name == "stream":
                        expected = _run_async(_statuses(url))
                        stream = measure_stream(base_url, api, expected, timeout=args.time_limit)
                    else:
                        results.append(run_scenario(by_key[name], seeded, base_url, api, args))
            if "e" in args.scenarios or "d" in args.scenarios:
                counter_errors = _run_async(_counters(url))
                if counter_errors:
                    print("COUNTER MISMATCH after the run:\n  " + "\n  ".join(counter_errors[:10]), file=sys.stderr)
    except BenchTimeoutError:
        print(f"aborted: the benchmark ran past its time limit of {args.time_limit:.0f} s", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        signal.alarm(0)
        shutil.rmtree(workdir, ignore_errors=True)
    print_table(results, stream)
    meta["load_average_after"] = round(os.getloadavg()[0], 2)
    print(f"\nmachine: {os.cpu_count()} CPUs; {json.dumps(meta)}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "meta": meta,
                    "scenarios": [{k: v for k, v in asdict(r).items() if k != "raw"} for r in results],
                    "stream": asdict(stream) if stream else None,
                    "counter_errors": counter_errors,
                },
                indent=2,
            )
        )
    ok = all(r.passed for r in results) and (stream is None or stream.passed) and not counter_errors
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark live events: flip-to-stream latency at 1,000 events/s, and 1,000 streams on one API process.

    .venv/bin/python bench/events.py [--rate 1000] [--seconds 10] [--streams 1000] [--fanout-streams 1000]
                                     [--baseline main] [--rounds 1] [--only latency,streams,fanout]
                                     [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

Without ``--database-url`` it starts a durable embedded Postgres (fsync on) in a temporary directory.
Seeds ``--streams`` bot users, each following one target of their own. Each scenario gets a fresh API
process (``python -m seeonline api``); with ``--baseline REF`` the same scenario runs first against
REF's code (``git archive``) and then against the working tree, so both see the same machine load.
Transitions go through the worker's real ingestion path (``StatusWriter``: batched writes, one NOTIFY
per batch) at ``--rate`` per second, stamped with the wall-clock time they were submitted. Streams are
read by ``bench/sse_readers.py`` in a process of its own (cheap counting readers; a few ``exact`` ones
record every id and latency).

1. ``latency``: one exact stream (all events): per-event latency p50/p99/max; every event once, in order.
2. ``streams``: ``--streams`` streams, each filtered to one bot user; the API's RSS growth when they are
   open and after the load, and latency (upper bound per read) spread over all of them.
3. ``fanout``: ``--fanout-streams`` unfiltered streams, each receiving every event: messages per second
   delivered against offered, how far streams fell behind (lag: per read, the age of its oldest event),
   streams the server closed, RSS growth, and three exact streams checked against the log.

Numbers are printed (and the JSON at the end); nothing is asserted on time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import multiprocessing
import os
import secrets
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ingest import database
from bench.profile_summary import summarize
from bench.sse_readers import StreamSpec, serve
from seeonline.database import migrations
from seeonline.local.embedded_postgres import find_free_port
from seeonline.logging import configure_logging
from seeonline_supervisor.worker.ingest import StatusWriter, Transition

ROOT = Path(__file__).resolve().parents[1]
# A key may hold 32 streams at once; the benchmark spreads its streams over as many keys as it needs.
KEYS = tuple(f"bench-events-api-key-{n:04d}" for n in range(64))
STREAMS_PER_KEY = 32
SECRET_KEY = secrets.token_hex(32)
SCENARIOS = ("latency", "streams", "fanout")


async def seed(url: str, people: int) -> list[int]:
    """``people`` bot users, person i following target i; returns the target ids in person order."""
    connection = await asyncpg.connect(url)
    try:
        async with connection.transaction():
            await connection.execute(
                "INSERT INTO telegram_users (telegram_id, max_users) SELECT g, 10 FROM generate_series(1, $1) g", people
            )
            await connection.execute(
                "INSERT INTO targets (username, visibility) SELECT 'bench_' || g, 'visible'"
                " FROM generate_series(1, $1) g",
                people,
            )
            await connection.execute(
                "INSERT INTO tracked_users (telegram_user_id, target_id, username)"
                " SELECT p.id, t.id, t.username FROM telegram_users p"
                " JOIN targets t ON t.username = 'bench_' || p.telegram_id"
            )
        await connection.execute("ANALYZE")
        rows = await connection.fetch(
            "SELECT t.id FROM telegram_users p JOIN targets t ON t.username = 'bench_' || p.telegram_id ORDER BY p.id"
        )
        return [row[0] for row in rows]
    finally:
        await connection.close()


@contextlib.contextmanager
def source_of(ref: str | None) -> Iterator[Path | None]:
    """A checkout of ``ref`` in a temporary directory (None: the working tree)."""
    if ref is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="seeonline-events-baseline-") as directory:
        archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(directory, filter="tar")
        yield Path(directory)


@contextlib.asynccontextmanager
async def api_process(url: str, source: Path | None) -> AsyncIterator[tuple[int, psutil.Process]]:
    """One API process on a free port (``source``'s code when given); yields its port and process."""
    port = find_free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SEEONLINE_API_KEYS": ",".join(KEYS),
        "SEEONLINE_SECRET_KEY": SECRET_KEY,
        "SEEONLINE_LOG_LEVEL": "warning",
        "SEEONLINE_MAX_CONNECTIONS": "4000",  # 1,000 streams and more fill the default 1,000
    }
    if source is not None:
        env["PYTHONPATH"] = f"{source / 'src'}{os.pathsep}{source}"
    api = subprocess.Popen([sys.executable, "-m", "seeonline", "api", "--port", str(port)], env=env)  # noqa: ASYNC220
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(300):
                if api.poll() is not None:
                    raise RuntimeError(f"the API exited with {api.returncode}")
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        yield port, psutil.Process(api.pid)
    finally:
        api.terminate()
        try:
            api.wait(10)
        except subprocess.TimeoutExpired:
            api.kill()


class Readers:
    """The reader process and its streams."""

    def __init__(self, port: int, specs: list[StreamSpec]) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipe, child = context.Pipe()
        self.process = context.Process(target=serve, args=(port, specs, child), daemon=True)

    async def ask(self, command: str, within: float = 600.0) -> dict[str, Any]:
        """Send one command and wait for its answer."""
        self.pipe.send(command)
        loop = asyncio.get_running_loop()
        answer: dict[str, Any] = await asyncio.wait_for(loop.run_in_executor(None, self.pipe.recv), within)
        if "error" in answer:
            raise RuntimeError(f"readers: {answer['error']}")
        return answer

    async def __aenter__(self) -> Readers:
        self.process.start()
        await self.ask("open")
        return self

    async def __aexit__(self, *_: object) -> None:
        with contextlib.suppress(Exception):
            await self.ask("close", within=30)
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()


def specs(queries: list[str], exact: int) -> list[StreamSpec]:
    """One stream per query, the first ``exact`` of them recording every event."""
    return [StreamSpec(q, KEYS[n // STREAMS_PER_KEY], exact=n < exact) for n, q in enumerate(queries)]


# Each target's last submitted state, kept across drives so that every submission is a change (an event).
STATE: dict[int, bool] = {}


async def drive(url: str, targets: list[int], rate: int, seconds: float) -> tuple[int, float]:
    """Submit ``rate`` transitions per second through the worker's writer, each stamped now.

    Returns how many were submitted and how long until the last of them was committed.
    """
    writer = StatusWriter(url)
    writer.start()
    per_tick = max(1, round(rate * 0.01))
    sent = 0
    began = time.perf_counter()
    index = 0
    while time.perf_counter() - began < seconds:
        now = datetime.now(UTC)
        batch = []
        for _ in range(per_tick):
            target = targets[index % len(targets)]
            index += 1
            STATE[target] = not STATE.get(target, False)
            batch.append(Transition(target, STATE[target], now))
        writer.submit_many(batch)
        sent += len(batch)
        await asyncio.sleep(max(0.0, began + sent / rate - time.perf_counter()))
    await writer.flush()
    took = time.perf_counter() - began
    await writer.close()
    return sent, took


def summary(latencies: list[float]) -> dict[str, float]:
    """p50/p99/max in milliseconds."""
    if not latencies:
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan")}
    ordered = sorted(latencies)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


async def settle(readers: Readers, expected: int, within: float) -> dict[str, Any]:
    """Report once the streams read ``expected`` events in all (or ``within`` seconds passed)."""
    deadline = time.monotonic() + within
    while True:
        found = await readers.ask("report")
        if sum(found["counts"]) >= expected or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.25)


async def event_ids_after(url: str, after: int) -> list[int]:
    """The status events' ids after ``after``, in order."""
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch("SELECT id FROM events WHERE id > $1 AND type = 'status' ORDER BY id", after)
        return [row[0] for row in rows]
    finally:
        await connection.close()


async def newest_id(url: str) -> int:
    """The newest event id."""
    connection = await asyncpg.connect(url)
    try:
        found: int = await connection.fetchval("SELECT coalesce(max(id), 0) FROM events")
        return found
    finally:
        await connection.close()


def exactness(exact: list[dict[str, Any]], logged: list[int]) -> dict[str, Any]:
    """Whether each exact stream read logged events only, in order, none twice, and all of them."""
    known = set(logged)
    return {
        "exact_streams": len(exact),
        "exact_in_order_once": all(s["ids"] == sorted(set(s["ids"])) and known.issuperset(s["ids"]) for s in exact),
        "exact_complete": all(s["ids"] == logged for s in exact),
    }


@contextlib.contextmanager
def profiled(args: argparse.Namespace, process: psutil.Process, label: str) -> Iterator[None]:
    """``py-spy record`` on the API while the block runs, when ``--profile DIR`` asks; prints a summary."""
    if args.profile is None:
        yield
        return
    args.profile.mkdir(parents=True, exist_ok=True)
    output = args.profile / f"{label.replace('/', '-')}.txt"
    command = [
        args.py_spy, "record", "--pid", str(process.pid), "--duration", str(max(1, int(args.seconds) - 1)),
        "--rate", "100", "--format", "raw", "--nonblocking", "--output", str(output),
    ]  # fmt: skip
    profiler = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield
    finally:
        _, stderr = profiler.communicate(timeout=60)
        if profiler.returncode or not output.exists():
            print(f"py-spy failed: {stderr.decode(errors='replace')[-500:]}", flush=True)
        else:
            print("\n".join(summarize(output, top=15)), flush=True)


def cpu_and_wait(pid: int) -> tuple[float, float]:
    """Seconds a process ran and seconds it waited, runnable, for a core (``/proc/PID/schedstat``)."""
    total_run = total_wait = 0.0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        run, wait, _ = stat.read_text().split()
        total_run, total_wait = total_run + int(run) / 1e9, total_wait + int(wait) / 1e9
    return total_run, total_wait


def mb(rss: int) -> float:
    """Bytes as MiB."""
    return round(rss / 2**20, 1)


async def latency(args: argparse.Namespace, url: str, targets: list[int], source: Path | None) -> dict[str, Any]:
    """One exact stream of every event."""
    async with api_process(url, source) as (port, _), Readers(port, specs([""], exact=1)) as readers:
        await drive(url, targets, args.rate, 2.0)  # unmeasured: pools, plans, first batches
        await asyncio.sleep(1)
        await readers.ask("mark")
        before = await newest_id(url)
        sent, _ = await drive(url, targets, args.rate, args.seconds)
        logged = await event_ids_after(url, before)
        found = await settle(readers, len(logged), within=10)
    [one] = found["exact"]
    return {
        "submitted": sent,
        "events": len(logged),
        "received": len(one["ids"]),
        "unique": len(set(one["ids"])),
        **exactness(found["exact"], logged),
        **summary(one["latencies"]),
    }


async def many_streams(
    args: argparse.Namespace, url: str, targets: list[int], source: Path | None, queries: list[str], label: str
) -> dict[str, Any]:
    """``queries`` streams at once: RSS, delivery, lag; used by the ``streams`` and ``fanout`` scenarios."""
    async with api_process(url, source) as (port, process):
        await drive(url, targets, args.rate, 1.0)  # the same warm-up for either code
        await asyncio.sleep(1)
        rss_before = process.memory_info().rss
        async with Readers(port, specs(queries, exact=3)) as readers:
            await asyncio.sleep(1)
            rss_open = process.memory_info().rss
            threads = process.num_threads()
            await readers.ask("mark")
            before = await newest_id(url)
            pids = {"api": process.pid, "readers": readers.process.pid or 0}
            before_drive = {name: cpu_and_wait(pid) for name, pid in pids.items()}
            with profiled(args, process, label):
                sent, took = await drive(url, targets, args.rate, args.seconds)
            after_drive = {name: cpu_and_wait(pid) for name, pid in pids.items()}
            in_window = await readers.ask("report")
            rss_load = process.memory_info().rss
            logged = await event_ids_after(url, before)
            expected = len(logged) if queries[0] else len(logged) * len(queries)
            found = await settle(readers, expected, within=10)
    delivered_in_window = sum(in_window["counts"])
    return {
        "streams": len(queries),
        "submitted": sent,
        "events": len(logged),
        "offered_msg_per_s": round(expected / took),
        "delivered_msg_per_s": round(delivered_in_window / took),
        "delivered_in_window": delivered_in_window,
        "delivered_in_all": sum(found["counts"]),
        "expected": expected,
        "writes_read": found["reads"],
        "closed_by_server": found["closed"],
        "lag": found["lag"],
        # Unfiltered streams each read the whole log; a filtered one only its bot user's part.
        **(exactness(found["exact"], logged) if not queries[0] else {}),
        # Per second of the drive: CPU each process got, and time it stood runnable waiting for a core.
        **{
            f"{name}_{what}_per_s": round((after_drive[name][n] - before_drive[name][n]) / took, 2)
            for name in pids
            for n, what in enumerate(("cpu", "runqueue"))
        },
        "api_threads": threads,
        "rss_before_mb": mb(rss_before),
        "rss_growth_open_mb": mb(rss_open - rss_before),
        "rss_growth_load_mb": mb(rss_load - rss_before),
    }


async def run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    """Each chosen scenario against the baseline (when given), then against the working tree."""
    migrations.upgrade(url)
    targets = await seed(url, max(args.streams, 1))
    results: dict[str, Any] = {}
    variants = [("baseline", args.baseline), ("current", None)] if args.baseline else [("current", None)]
    with source_of(args.baseline) as baseline_source:
        sources = {"baseline": baseline_source, "current": None}
        for round_number in range(args.rounds):
            for scenario in args.only:
                for name, _ in variants:
                    label = f"{scenario}/{name}" + (f"/{round_number + 1}" if args.rounds > 1 else "")
                    print(f"{label} ...", flush=True)
                    source = sources[name]
                    if scenario == "latency":
                        found = await latency(args, url, targets, source)
                    elif scenario == "streams":
                        queries = [f"telegram_user_id={n}" for n in range(1, args.streams + 1)]
                        found = await many_streams(args, url, targets, source, queries, label)
                    else:
                        everyone = [""] * args.fanout_streams
                        found = await many_streams(args, url, targets, source, everyone, label)
                    results[label] = found
                    print(f"{label}: {json.dumps(found)}", flush=True)
    return results


def main() -> None:
    """Parse arguments, run, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url")
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--streams", type=int, default=1000, help=f"at most {len(KEYS) * STREAMS_PER_KEY}")
    parser.add_argument("--fanout-streams", type=int, default=1000)
    parser.add_argument("--baseline", help="a git ref whose code runs each scenario first, for comparison")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--only", type=lambda raw: raw.split(","), default=list(SCENARIOS))
    parser.add_argument("--profile", type=Path, help="py-spy record the API into this folder while measuring")
    parser.add_argument("--py-spy", default=str(Path(sys.executable).with_name("py-spy")))
    args = parser.parse_args()
    configure_logging("warning")
    with database(args.database_url) as url:
        results = asyncio.run(run(args, url))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""Benchmark live events: flip-to-stream latency at 1,000 events/s, and 1,000 streams on one API process.

    .venv/bin/python bench/events.py [--rate 1000] [--seconds 10] [--streams 1000] [--fanout-streams 1000]
                                     [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

Without ``--database-url`` it starts a durable embedded Postgres (fsync on) in a temporary directory.
Seeds ``--streams`` bot users, each following one target of their own, and starts one API process
(``python -m seeonline api``). Then:

1. ``latency``: one open stream (all events); transitions go through the worker's real ingestion path
   (``StatusWriter``, batched writes, one NOTIFY per batch) at ``--rate`` per second, stamped with the
   wall-clock time they were submitted (when a worker hands over a Telegram push); per event, the time
   until it arrives on the stream (p50/p99/max) and that every event arrived once.
2. ``streams``: ``--streams`` streams, each filtered to one bot user (``telegram_user_id``), opened on
   the API process: its RSS growth, then ``--rate`` events/s spread over all of them: latency and
   completeness per stream.
3. ``fan-out``: ``--fanout-streams`` unfiltered streams, each receiving every event at ``--rate``:
   how many messages per second the process delivers and how many streams it had to close (too far
   behind; such a client resumes by id).

Numbers are printed; nothing is asserted on time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ingest import database
from seeonline.database import migrations
from seeonline.local.embedded_postgres import find_free_port
from seeonline.logging import configure_logging
from seeonline_supervisor.worker.ingest import StatusWriter, Transition

# A key may hold 32 streams at once; the benchmark spreads its streams over as many keys as it needs.
KEYS = tuple(f"bench-events-key-{n:04d}" for n in range(64))
STREAMS_PER_KEY = 32
SECRET_KEY = "bench-events-secret-0123456789abcdef"


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


@dataclass
class RawStream:
    """An SSE stream read from a bare socket (cheap enough to hold a thousand in one process)."""

    parse: bool = True  # False: count events only (the benchmark's own CPU must not be what is measured)
    latencies: list[float] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    closed: bool = False
    task: asyncio.Task[None] | None = None


async def open_raw(port: int, query: str, key: str, stream: RawStream, ready: asyncio.Event | None = None) -> None:
    """Read ``GET /events/?query`` until the connection closes, recording each event's latency."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**20)
    writer.write(
        f"GET /events/?{query} HTTP/1.1\r\nHost: bench\r\nX-API-Key: {key}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    status = await reader.readline()
    if b" 200 " not in status:
        raise RuntimeError(f"stream refused: {status!r}")
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    if ready is not None:
        ready.set()
    try:
        while line := await reader.readline():
            if not stream.parse:
                if line.startswith(b"id: "):
                    stream.ids.append(0)
                continue
            if line.startswith(b"data: {"):
                now = time.time()
                data = json.loads(line[6:])
                stream.ids.append(data["id"])
                stream.latencies.append(now - datetime.fromisoformat(data["created_at"]).timestamp())
    finally:
        stream.closed = True
        writer.close()


async def drive(url: str, targets: list[int], rate: int, seconds: float) -> int:
    """Submit ``rate`` transitions per second through the worker's writer, each stamped now; how many."""
    writer = StatusWriter(url)
    writer.start()
    state = dict.fromkeys(targets, False)
    tick = 0.01
    per_tick = max(1, round(rate * tick))
    sent = 0
    began = time.perf_counter()
    index = 0
    while time.perf_counter() - began < seconds:
        now = datetime.now(UTC)
        batch = []
        for _ in range(per_tick):
            target = targets[index % len(targets)]
            index += 1
            state[target] = not state[target]
            batch.append(Transition(target, state[target], now))
        writer.submit_many(batch)
        sent += len(batch)
        next_at = began + (sent / rate)
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    await writer.flush()
    await writer.close()
    return sent


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


async def start_streams(port: int, queries: list[str], *, parse_first: int | None = None) -> list[RawStream]:
    """Open one raw stream per query (a few at a time) and wait until each is subscribed."""
    streams = []
    for number, query in enumerate(queries):
        stream, ready = RawStream(parse=parse_first is None or number < parse_first), asyncio.Event()
        key = KEYS[number // STREAMS_PER_KEY]
        stream.task = asyncio.create_task(open_raw(port, query, key, stream, ready))
        await asyncio.wait_for(ready.wait(), 30)
        streams.append(stream)
    return streams


async def stop_streams(streams: list[RawStream]) -> None:
    """Hang up every stream."""
    for stream in streams:
        if stream.task is not None:
            stream.task.cancel()
    await asyncio.gather(*(s.task for s in streams if s.task is not None), return_exceptions=True)


async def settle(streams: list[RawStream], expected: int, within: float = 10.0) -> None:
    """Wait until the streams received ``expected`` events in all (or ``within`` seconds passed)."""
    deadline = time.monotonic() + within
    while sum(len(s.ids) for s in streams) < expected and time.monotonic() < deadline:  # noqa: ASYNC110 - polling counters
        await asyncio.sleep(0.05)


async def run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    """All three scenarios against one API process."""
    migrations.upgrade(url)
    targets = await seed(url, args.streams)
    port = find_free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SEEONLINE_API_KEYS": ",".join(KEYS),
        "SEEONLINE_SECRET_KEY": SECRET_KEY,
        "SEEONLINE_LOG_LEVEL": "warning",
    }
    api = subprocess.Popen([sys.executable, "-m", "seeonline", "api", "--port", str(port)], env=env)  # noqa: ASYNC220
    results: dict[str, Any] = {}
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(300):
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        process = psutil.Process(api.pid)

        print(f"latency: 1 stream, {args.rate} events/s for {args.seconds} s ...", flush=True)
        [one] = await start_streams(port, [""])
        warm = await drive(url, targets, args.rate, 2.0)  # unmeasured: pools, plans, first batches
        await settle([one], warm)
        one.ids.clear()
        one.latencies.clear()
        sent = await drive(url, targets, args.rate, args.seconds)
        await settle([one], sent)
        await stop_streams([one])
        results["latency"] = {
            "events": sent,
            "received": len(one.ids),
            "unique": len(set(one.ids)),
            "in_order": one.ids == sorted(one.ids),
            **summary(one.latencies),
        }
        print(results["latency"], flush=True)

        print(f"streams: {args.streams} streams, one bot user each ...", flush=True)
        rss_before = process.memory_info().rss
        many = await start_streams(port, [f"telegram_user_id={n}" for n in range(1, args.streams + 1)])
        await asyncio.sleep(1)
        rss_open = process.memory_info().rss
        sent = await drive(url, targets, args.rate, args.seconds)
        await settle(many, sent)
        rss_after = process.memory_info().rss
        latencies = [value for stream in many for value in stream.latencies]
        results["streams"] = {
            "streams": len(many),
            "rss_before_mb": round(rss_before / 2**20, 1),
            "rss_growth_open_mb": round((rss_open - rss_before) / 2**20, 1),
            "rss_growth_after_load_mb": round((rss_after - rss_before) / 2**20, 1),
            "events": sent,
            "received": sum(len(s.ids) for s in many),
            "closed": sum(s.closed for s in many),
            **summary(latencies),
        }
        await stop_streams(many)
        print(results["streams"], flush=True)

        if args.fanout_streams:
            print(f"fan-out: {args.fanout_streams} unfiltered streams at {args.rate} events/s ...", flush=True)
            everyone = await start_streams(port, [""] * args.fanout_streams, parse_first=1)
            began = time.perf_counter()
            sent = await drive(url, targets, args.rate, args.seconds)
            await settle(everyone, sent * len(everyone), within=10)
            seconds = time.perf_counter() - began
            delivered = sum(len(s.ids) for s in everyone)
            results["fanout"] = {
                "streams": len(everyone),
                "events": sent,
                "messages_expected": sent * len(everyone),
                "messages_delivered": delivered,
                "messages_per_s": round(delivered / seconds),
                "closed_behind": sum(s.closed for s in everyone),
                **summary(everyone[0].latencies),  # measured on the first stream
            }
            await stop_streams(everyone)
            print(results["fanout"], flush=True)
    finally:
        api.terminate()
        try:
            api.wait(10)
        except subprocess.TimeoutExpired:
            api.kill()
    return results


def main() -> None:
    """Parse arguments, run, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url")
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--streams", type=int, default=1000, help=f"at most {len(KEYS) * STREAMS_PER_KEY}")
    parser.add_argument("--fanout-streams", type=int, default=1000)
    args = parser.parse_args()
    configure_logging("warning")
    with database(args.database_url) as url:
        results = asyncio.run(run(args, url))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

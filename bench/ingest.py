"""Benchmark status ingestion: transitions per second into committed rows, and event-to-commit latency.

    .venv/bin/python bench/ingest.py [--transitions 1000000] [--targets 10000] [--rate 1000] [--seconds 10]
                                     [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

Without ``--database-url`` it starts a durable embedded Postgres (fsync on) in a temporary directory.
It seeds ``--targets`` targets with ``--subscribers`` TrackedUsers each, then measures:

1. ``writer``: Transition objects submitted to a StatusWriter as fast as it takes them; sustained
   transitions/s from the first submit to the last commit (every transition is a state change).
2. ``worker pipeline``: the same through the worker's StatusBook, fed Telethon ``UserStatusOnline`` /
   ``UserStatusOffline`` objects as pushes arrive (expiry timers, clamping, visibility) -> writer -> rows.
3. ``latency``: ``--rate`` events/s for ``--seconds`` through the StatusBook; per event, the time from
   its arrival to the commit of the batch that wrote it (p50/p99/max).

Each scenario checks the committed row count. Numbers are printed; nothing is asserted on time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from telethon.tl import types

# Run as a script: the repository root on the path makes `bench.*` and the project importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seeonline.database import migrations
from seeonline.local.embedded_postgres import EmbeddedPostgres
from seeonline.logging import configure_logging
from seeonline_supervisor.worker.book import StatusBook, TargetState
from seeonline_supervisor.worker.ingest import StatusWriter, Transition

CHUNK = 5_000  # transitions handed over per event-loop turn, as a busy worker's handlers would


@contextlib.contextmanager
def database(url: str | None) -> Iterator[str]:
    """A fresh database: on the given server, or on a durable embedded Postgres."""
    name = f"seeonline_ingest_bench_{secrets.token_hex(3)}"
    if url:
        admin = url.replace("postgresql+asyncpg://", "postgresql://")
        asyncio.run(_admin(admin, f'CREATE DATABASE "{name}"'))
        try:
            yield admin.rsplit("/", 1)[0] + f"/{name}"
        finally:
            asyncio.run(_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        return
    with tempfile.TemporaryDirectory(prefix="seeonline-ingest-bench-") as work:
        Path(work).chmod(0o755)
        server = EmbeddedPostgres(Path(work) / "pg", durable=True)
        print(f"starting a durable embedded Postgres in {work} ...", flush=True)
        server.start()
        try:
            yield server.create_database(name)
        finally:
            server.stop()


async def _admin(url: str, sql: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def seed(url: str, targets: int, subscribers: int, prefix: str) -> list[int]:
    """Fresh targets (never written to) with subscribers, in set-based SQL; returns the target ids."""
    connection = await asyncpg.connect(url)
    try:
        async with connection.transaction():
            people = await connection.fetch(
                """INSERT INTO telegram_users (telegram_id, max_users)
                   SELECT coalesce((SELECT max(telegram_id) FROM telegram_users), 0) + g, 1000000
                   FROM generate_series(1, $1) g RETURNING id""",
                subscribers,
            )
            ids = await connection.fetch(
                "INSERT INTO targets (username) SELECT $2 || g FROM generate_series(1, $1) g RETURNING id",
                targets,
                prefix,
            )
            await connection.execute(
                """INSERT INTO tracked_users (telegram_user_id, target_id, username)
                   SELECT p, t, 'bench' FROM unnest($1::bigint[]) t CROSS JOIN unnest($2::bigint[]) p""",
                [r["id"] for r in ids],
                [r["id"] for r in people],
            )
        await connection.execute("ANALYZE")
        return [r["id"] for r in ids]
    finally:
        await connection.close()


async def count_rows(url: str) -> int:
    """Committed status rows."""
    connection = await asyncpg.connect(url)
    try:
        return int(await connection.fetchval("SELECT count(*) FROM online_statuses"))
    finally:
        await connection.close()


async def writer_throughput(url: str, target_ids: list[int], total: int) -> dict[str, Any]:
    """Scenario 1: Transition objects straight into the writer."""
    writer = StatusWriter(url)
    writer.start()
    base = datetime.now(UTC) + timedelta(days=1)
    n_targets = len(target_ids)
    before = await count_rows(url)
    began = time.perf_counter()
    for start in range(0, total, CHUNK):
        writer.submit_many(
            Transition(target_ids[i % n_targets], (i // n_targets) % 2 == 0, base + timedelta(microseconds=i))
            for i in range(start, min(start + CHUNK, total))
        )
        await asyncio.sleep(0)
    await writer.flush()
    seconds = time.perf_counter() - began
    await writer.close()
    rows = await count_rows(url) - before
    return _throughput("writer", total, rows, seconds, writer)


async def pipeline_throughput(url: str, target_ids: list[int], total: int) -> dict[str, Any]:
    """Scenario 2: Telethon status objects through the worker's StatusBook into the writer."""
    writer = StatusWriter(url)
    writer.start()
    book = StatusBook(writer)
    user_ids = _watch_all(book, target_ids)
    far = datetime.now(UTC) + timedelta(days=2)
    expires = datetime.now(UTC) + timedelta(minutes=5)
    n_targets = len(user_ids)
    # Telethon deserializes these off the wire; building them is not part of our pipeline.
    statuses: list[Any] = [
        types.UserStatusOnline(expires=expires)
        if (i // n_targets) % 2 == 0
        else types.UserStatusOffline(was_online=far + timedelta(microseconds=i))
        for i in range(total)
    ]
    before = await count_rows(url)
    began = time.perf_counter()
    for start in range(0, total, CHUNK):
        for i in range(start, min(start + CHUNK, total)):
            book.observe(user_ids[i % n_targets], statuses[i])
        await asyncio.sleep(0)
    await writer.flush()
    seconds = time.perf_counter() - began
    book.close()
    await writer.close()
    rows = await count_rows(url) - before
    return _throughput("worker pipeline", total, rows, seconds, writer)


async def latency(url: str, target_ids: list[int], rate: float, seconds: float) -> dict[str, Any]:
    """Scenario 3: a steady ``rate`` of pushes; time from arrival to the commit that wrote each one."""
    arrivals: list[float] = []
    latencies: list[float] = []

    def on_commit(_result: Any) -> None:
        now = time.perf_counter()
        latencies.extend(now - t for t in arrivals[len(latencies) : writer.committed])

    writer = StatusWriter(url, on_commit=on_commit)
    writer.start()
    book = StatusBook(writer)
    user_ids = _watch_all(book, target_ids)
    online = [False] * len(user_ids)
    far = datetime.now(UTC) + timedelta(days=3)
    expires = datetime.now(UTC) + timedelta(minutes=5)
    before = await count_rows(url)
    total = int(rate * seconds)
    began = time.perf_counter()
    for i in range(total):
        # Pace by the clock: event i is due at began + i / rate.
        due = began + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        k = i % len(user_ids)
        online[k] = not online[k]
        status = (
            types.UserStatusOnline(expires=expires)
            if online[k]
            else types.UserStatusOffline(was_online=far + timedelta(microseconds=i))
        )
        arrivals.append(time.perf_counter())
        book.observe(user_ids[k], status)
    await writer.flush()
    book.close()
    await writer.close()
    rows = await count_rows(url) - before
    ordered = sorted(latencies)
    return {
        "scenario": f"latency at {rate:.0f} events/s for {seconds:.0f} s",
        "events": total,
        "rows": rows,
        "batches": writer.batches,
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


def _watch_all(book: StatusBook, target_ids: list[int]) -> list[int]:
    user_ids = []
    for n, target_id in enumerate(target_ids):
        state = TargetState(target_id=target_id, username=f"bench_{n}", visibility="visible")
        book.add(state)
        book.bind(state, 6_000_000_000 + n, n)
        user_ids.append(6_000_000_000 + n)
    return user_ids


def _throughput(name: str, total: int, rows: int, seconds: float, writer: StatusWriter) -> dict[str, Any]:
    return {
        "scenario": name,
        "transitions": total,
        "rows": rows,
        "seconds": round(seconds, 3),
        "transitions_per_s": round(total / seconds),
        "rows_per_s": round(rows / seconds),
        "batches": writer.batches,
        "avg_batch": round(total / max(writer.batches, 1)),
    }


async def run(args: argparse.Namespace, url: str) -> None:
    """Seed, then run the three scenarios and print their numbers."""
    migrations.upgrade(url)
    print(f"{args.targets} targets x {args.subscribers} subscriber(s) per scenario", flush=True)
    expected = args.transitions * args.subscribers
    for n, scenario in enumerate((writer_throughput, pipeline_throughput)):
        target_ids = await seed(url, args.targets, args.subscribers, f"b{n}_")
        result = await scenario(url, target_ids, args.transitions)
        _report(result, expected)
    target_ids = await seed(url, args.targets, args.subscribers, "lat_")
    result = await latency(url, target_ids, args.rate, args.seconds)
    _report(result, int(args.rate * args.seconds) * args.subscribers)


def _report(result: dict[str, Any], expected_rows: int) -> None:
    ok = "ok" if result["rows"] == expected_rows else f"MISMATCH (expected {expected_rows})"
    print("  ".join(f"{k}={v}" for k, v in result.items()) + f"  rows_check={ok}", flush=True)


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transitions", type=int, default=1_000_000)
    parser.add_argument("--targets", type=int, default=10_000)
    parser.add_argument("--subscribers", type=int, default=1, help="TrackedUsers per target (rows per transition)")
    parser.add_argument("--rate", type=float, default=1_000.0, help="events/s of the latency scenario")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of the latency scenario")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    configure_logging("warning")
    with database(args.database_url) as url:
        asyncio.run(run(args, url))


if __name__ == "__main__":
    main()

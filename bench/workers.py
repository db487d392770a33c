"""Supervisor footprint and reaction time: USS per worker with N workers on the sandbox; row change → worker running.

Run: ``.venv/bin/python bench/workers.py [--workers 50] [--samples 40] [--worker real|idle]``.
Uses ``DATABASE_URL``'s server when set (a scratch database is created on it), otherwise an embedded
Postgres. Starts ``seeonline sandbox`` and ``seeonline supervisor`` as subprocesses. ``--worker idle``
runs a stand-in that holds the tracker's lock and keeps a connected Telethon client (for when the
real worker is unavailable); ``real`` (the default when importable) runs ``supervisor.worker.main``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script: the repository root on the path makes `bench.*` importable (the idle worker target).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import statistics
import subprocess
import tempfile
import time
from typing import Any

import asyncpg
import psutil

from seeonline import secrets as crypto
from seeonline.database import migrations
from seeonline.database.channels import TRACKER_LOCK_SPACE

ROOT = Path(__file__).resolve().parents[1]
LOCKS = """
SELECT objid::bigint AS tracker FROM pg_locks
WHERE locktype = 'advisory' AND granted AND objsubid = 2 AND classid = $1::bigint::oid
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


def _start_postgres(work: Path) -> tuple[str, Any]:
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"].replace("+asyncpg", ""), None
    from seeonline.local.embedded_postgres import EmbeddedPostgres  # noqa: PLC0415

    work.chmod(0o755)
    server = EmbeddedPostgres(work / "pg", durable=False)
    server.start()
    return server.url("postgres"), server


async def _create_database(admin_url: str) -> str:
    name = f"seeonline_bench_{secrets.token_hex(4)}"
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}"


def _start_sandbox(
    work: Path, trackers: int, people: int
) -> tuple[subprocess.Popen[bytes], dict[str, Any], dict[str, str]]:
    manifest = work / "sandbox.json"
    command = [sys.executable, "-m", "seeonline", "sandbox", "--trackers", str(trackers), "--people", str(people)]
    command += ["--port", "0", "--control-port", "0", "--manifest", str(manifest), "--exit-with-parent"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=(work / "sandbox.log").open("wb"))
    assert process.stdout is not None
    login_env: dict[str, str] = {}
    for line in process.stdout:
        if b"sandbox_ready" in line:
            login_env = json.loads(line)["login_env"]  # sandbox mode: sessions may point at it
            break
    return process, json.loads(manifest.read_text()), login_env


async def _register(url: str, secret_key: str, manifest: dict[str, Any]) -> list[int]:
    connection = await asyncpg.connect(url)
    ids = []
    try:
        for tracker in manifest["trackers"]:
            tracker_id = await connection.fetchval("SELECT nextval(pg_get_serial_sequence('tracker_accounts', 'id'))")
            await connection.execute(
                "INSERT INTO tracker_accounts (id, telegram_id, api_id, api_hash_encrypted, api_hash_lookup,"
                " api_hash_masked, is_active, is_auth) VALUES ($5, $1, $2, $3, $4, '****', true, true)",
                tracker["telegram_id"],
                tracker["api_id"],
                crypto.encrypt(secret_key, tracker["api_hash"], crypto.tracker_api_hash(tracker_id)),
                crypto.lookup_hash(secret_key, tracker["api_hash"]),
                tracker_id,
            )
            await connection.execute(
                "INSERT INTO tracker_settings (tracker_account_id, phone_number, session_encrypted, max_users)"
                " VALUES ($1, $2, $3, 50)",
                tracker_id,
                tracker["phone"],
                crypto.encrypt(secret_key, tracker["session_string"], crypto.tracker_session(tracker_id)),
            )
            ids.append(tracker_id)
    finally:
        await connection.close()
    return ids


async def _subscribe(url: str, secret_key: str, manifest: dict[str, Any]) -> int:
    """Follow every sandbox person through the API, as the bot would; returns how many were followed."""
    from litestar.testing import AsyncTestClient  # noqa: PLC0415

    from seeonline.server.app import create_app  # noqa: PLC0415
    from seeonline.settings import load_settings  # noqa: PLC0415

    api_key = secrets.token_hex(16)
    settings = load_settings({"DATABASE_URL": url, "SEEONLINE_API_KEYS": api_key, "SEEONLINE_SECRET_KEY": secret_key})
    people = manifest["people"]
    async with AsyncTestClient(app=create_app(settings)) as client:
        client.headers["X-API-Key"] = api_key
        owner = await client.post("/telegram-users/", json={"telegram_id": 42, "max_users": len(people) + 1})
        assert owner.status_code == 201, owner.text
        for entry in people:
            body = {"telegram_user_id": owner.json()["id"], "username": entry["username"]}
            response = await client.post("/tracked-users/", json=body)
            assert response.status_code == 201, response.text
    return len(people)


async def _locked(connection: asyncpg.Connection[Any]) -> set[int]:
    return {row["tracker"] for row in await connection.fetch(LOCKS, TRACKER_LOCK_SPACE)}


async def _wait(predicate: Any, limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while not await predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.002)


def _memory(supervisor_pid: int) -> dict[str, Any]:
    parent = psutil.Process(supervisor_pid)
    family = parent.children(recursive=True)
    forkservers = [p for p in family if p.ppid() == supervisor_pid]
    workers = [p for p in family if p.ppid() != supervisor_pid]
    uss = [p.memory_full_info().uss / 2**20 for p in workers]
    return {
        "workers": len(workers),
        "uss_mb_mean": round(statistics.fmean(uss), 2),
        "uss_mb_median": round(statistics.median(uss), 2),
        "uss_mb_max": round(max(uss), 2),
        "rss_mb_mean": round(statistics.fmean(p.memory_info().rss / 2**20 for p in workers), 2),
        "workers_uss_mb_total": round(sum(uss), 1),
        "forkserver_uss_mb": [round(p.memory_full_info().uss / 2**20, 1) for p in forkservers],
        "supervisor_uss_mb": round(parent.memory_full_info().uss / 2**20, 1),
    }


async def _latency(url: str, ids: list[int], samples: int) -> list[float]:
    connection = await asyncpg.connect(url)
    results = []
    try:
        for tracker in (ids * samples)[:samples]:
            await connection.execute("UPDATE tracker_accounts SET is_active = false WHERE id = $1", tracker)

            async def released(tracker: int = tracker) -> bool:
                return tracker not in await _locked(connection)

            await _wait(released, 30, f"tracker {tracker} to stop")
            began = time.perf_counter()
            await connection.execute("UPDATE tracker_accounts SET is_active = true WHERE id = $1", tracker)

            async def held(tracker: int = tracker) -> bool:
                return tracker in await _locked(connection)

            await _wait(held, 30, f"tracker {tracker} to start")
            results.append(time.perf_counter() - began)
    finally:
        await connection.close()
    return results


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _bench(args: argparse.Namespace, url: str, work: Path) -> None:
    secret_key = crypto.generate_secret_key()
    sandbox, manifest, login_env = _start_sandbox(work, args.workers, args.workers * args.targets)
    supervisor = None
    try:
        ids = await _register(url, secret_key, manifest)
        followed = await _subscribe(url, secret_key, manifest)
        env = {
            **os.environ,
            **login_env,
            "DATABASE_URL": url,
            "SEEONLINE_SECRET_KEY": secret_key,
            "PYTHONPATH": str(ROOT),
            "SEEONLINE_LOG_JSON": "true",
            "SEEONLINE_LOG_LEVEL": "warning",
        }
        command = [sys.executable, "-m", "seeonline", "supervisor", "--exit-with-parent"]
        if args.worker == "idle":
            command += ["--worker-target", "bench.idle_worker:idle_worker"]
        began = time.perf_counter()
        supervisor = subprocess.Popen(command, env=env, stderr=(work / "supervisor.log").open("wb"))  # noqa: ASYNC220
        watcher = await asyncpg.connect(url)

        async def all_running() -> bool:
            return len(await _locked(watcher)) == len(ids)

        await _wait(all_running, 120, "every worker to hold its lock")
        cold = time.perf_counter() - began

        async def all_enrolled() -> bool:
            return not await watcher.fetchval("SELECT count(*) FROM targets WHERE visibility = 'unknown'")

        if args.worker == "real":
            await _wait(all_enrolled, 300, "every target to be resolved and added")
        enrolled = time.perf_counter() - began
        await asyncio.sleep(args.settle)
        memory = _memory(supervisor.pid)
        await watcher.close()
        latencies = await _latency(url, ids, args.samples)
        report = {
            "worker": args.worker,
            "targets": followed,
            "cold_start_all_workers_s": round(cold, 2),
            "all_targets_enrolled_s": round(enrolled, 2),
            **memory,
            "latency_samples": len(latencies),
            "latency_ms_p50": round(_percentile(latencies, 0.5) * 1000, 1),
            "latency_ms_p99": round(_percentile(latencies, 0.99) * 1000, 1),
            "latency_ms_max": round(max(latencies) * 1000, 1),
        }
        print(json.dumps(report, indent=2))
    finally:
        if supervisor is not None:
            supervisor.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                supervisor.wait(30)
            supervisor.kill()
        sandbox.terminate()
        sandbox.wait(10)


def main() -> None:
    """Parse options, set up Postgres, run the benchmark, print a JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=50)
    parser.add_argument("--targets", type=int, default=4, help="followed people per worker")
    parser.add_argument("--samples", type=int, default=40, help="row change → running measurements")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds between start-up and the memory reading")
    real_available = (ROOT / "supervisor" / "worker" / "main.py").exists()
    parser.add_argument("--worker", choices=("real", "idle"), default="real" if real_available else "idle")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="seeonline-bench-") as tmp:
        work = Path(tmp)
        admin_url, server = _start_postgres(work)
        try:
            url = asyncio.run(_create_database(admin_url))
            migrations.upgrade(url)
            asyncio.run(_bench(args, url, work))
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main()

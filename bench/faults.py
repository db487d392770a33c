"""Fault numbers: host failover, worker kill -9, Telegram outages, Postgres outages, with people flipping.

Run: ``.venv/bin/python bench/faults.py [--scenarios failover,worker_kill,telegram,postgres] [--json FILE]``.

Real ``seeonline supervisor`` subprocesses (each its own process group, as a host would be) with the
real workers, an embedded Postgres (stopped and started for the Postgres outages) and the Telegram
sandbox in this process (so a Telegram outage is ``go_offline``: every connection dropped, new ones
refused). People flip online/offline every 6-9 s (random, per person) for the whole run; a flip counts
as recorded when a row of the same state lies within 2 s of it (a push is stamped on receipt, an
offline carries Telegram's ``was_online`` to the second). Scenarios (see bench/README.md):

- ``failover``: host A's supervisor runs every tracker, host B's waits; ``kill -9`` of A's whole process
  group; per tracker, time until B's worker answered its resync (``contacts.getStatuses``); flips lost
  before, during and after. Once with the default ``SEEONLINE_LEASE_GRACE`` and once with a small one
  (``--failover-graces``).
- ``worker_kill``: ``kill -9`` of one worker (each tracker once): time until its replacement resynced.
- ``telegram``: Telegram unreachable for ``--telegram-outage`` s: flips made during it that were lost
  (per minute), flips outside it lost, sessions inside it recorded as inexact (source ``resync``).
- ``postgres``: Postgres stopped for each of ``--postgres-outages`` s (default grace): flips lost.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script: the repository root on the path makes `bench.*` importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import random
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from bench.workers import _create_database, _register, _subscribe
from seeonline import secrets as crypto
from seeonline.database import migrations
from seeonline.lease import DEFAULT_GRACE
from seeonline.local.embedded_postgres import EmbeddedPostgres
from seeonline.sandbox import SandboxServer
from seeonline.sandbox.world import World

ROOT = Path(__file__).resolve().parents[1]
MATCH_WITHIN = 2.0  # seconds between a flip and the row that records it
FLIP_SPACING = (6.0, 9.0)
ROWS = """
SELECT t.username, s.is_online, extract(epoch FROM s.created_at)::float8 AS at, s.source
FROM online_statuses s
JOIN tracked_users u ON u.id = s.tracked_user_id
JOIN targets t ON t.id = u.target_id
"""
_STAGES = itertools.count(1)
ENROLLED = "SELECT count(*) FROM targets WHERE enrolled_at IS NULL"

logging.getLogger("telethon").setLevel(logging.ERROR)


@dataclass
class Flip:
    """One status change the sandbox made."""

    username: str
    online: bool
    at: float


@dataclass
class Stage:
    """A database, a sandbox world with trackers and people, and the flips made so far."""

    url: str
    secret_key: str
    sandbox: SandboxServer
    accounts: list[Any]
    people: list[str]
    work: Path
    flips: list[Flip] = field(default_factory=list)
    hosts: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _flipping: list[asyncio.Task[None]] = field(default_factory=list)

    def start_host(self, name: str, grace: float) -> subprocess.Popen[bytes]:
        """A ``seeonline supervisor`` in its own process group (a host), logging to ``<work>/<name>.log``."""
        env = {
            **os.environ,
            "DATABASE_URL": self.url,
            "SEEONLINE_SECRET_KEY": self.secret_key,
            "SEEONLINE_LEASE_GRACE": str(grace),
            "SEEONLINE_TELEGRAM_DC": f"{self.sandbox.public_host}:{self.sandbox.port}",  # sandbox sessions allowed
            "SEEONLINE_LOG_JSON": "true",
            "SEEONLINE_LOG_LEVEL": "info",
            "PYTHONPATH": str(ROOT),
        }
        command = [sys.executable, "-m", "seeonline", "supervisor", "--exit-with-parent"]
        log = (self.work / f"{name}.log").open("ab")
        host = subprocess.Popen(command, env=env, stderr=log, stdout=log, start_new_session=True)
        self.hosts.append(host)
        return host

    def start_flipping(self) -> None:
        """Every person flips every 6-9 s from now on."""
        for name in self.people:
            self._flipping.append(asyncio.create_task(self._flip(name)))

    async def _flip(self, name: str) -> None:
        online = False
        while True:
            await asyncio.sleep(random.uniform(*FLIP_SPACING))
            online = not online
            self.sandbox.world.set_status(name, online=online, expires_in=600.0)
            self.flips.append(Flip(name, online, time.time()))

    async def stop(self) -> None:
        """Stop flipping and every host (SIGTERM, then SIGKILL of its group)."""
        for task in self._flipping:
            task.cancel()
        await asyncio.gather(*self._flipping, return_exceptions=True)
        for host in self.hosts:
            with contextlib.suppress(ProcessLookupError):
                host.send_signal(signal.SIGTERM)
        for host in self.hosts:
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(host.wait, 20)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(host.pid, signal.SIGKILL)

    async def rows(self) -> list[asyncpg.Record]:
        """Every status row, with its target's username and time as a unix timestamp."""
        connection = await asyncpg.connect(self.url)
        try:
            return list(await connection.fetch(ROWS))
        finally:
            await connection.close()

    async def wait_enrolled(self, limit: float = 180.0) -> None:
        """Until every target is a contact of its tracker."""
        connection = await asyncpg.connect(self.url)
        try:
            deadline = time.monotonic() + limit
            while await connection.fetchval(ENROLLED):
                if time.monotonic() > deadline:
                    raise SystemExit("timed out waiting for every target to be enrolled")
                await asyncio.sleep(0.2)
        finally:
            await connection.close()

    def resynced_after(self, account: Any, after: float) -> float | None:
        """When ``account`` got its first answered ``contacts.getStatuses`` after ``after``."""
        times = [
            c.time for c in self.sandbox.calls_to("contacts.getStatuses", account) if c.time > after and not c.error
        ]
        return min(times) if times else None


def lost(flips: list[Flip], rows: list[asyncpg.Record]) -> list[Flip]:
    """The flips no row records."""
    by_name: dict[str, list[tuple[bool, float]]] = {}
    for row in rows:
        by_name.setdefault(row["username"], []).append((row["is_online"], row["at"]))
    return [
        flip
        for flip in flips
        if not any(s == flip.online and abs(at - flip.at) <= MATCH_WITHIN for s, at in by_name.get(flip.username, ()))
    ]


async def make_stage(url: str, work: Path, sandbox: SandboxServer, trackers: int, per_tracker: int) -> Stage:
    """Trackers (``max_users`` 50 each) and people in the world and the database, everyone followed."""
    secret_key = crypto.generate_secret_key()
    accounts = [sandbox.world.add_account() for _ in range(trackers)]
    stage_no = next(_STAGES)
    people = [f"flipper_{stage_no}_{i:03d}" for i in range(trackers * per_tracker)]
    for name in people:
        sandbox.world.add_person(name, last_seen_ago=600)
    manifest = {
        "trackers": [
            {
                "telegram_id": a.id,
                "api_id": a.api_id,
                "api_hash": a.api_hash,
                "phone": a.phone if str(a.phone).startswith("+") else f"+{a.phone}",
                "session_string": sandbox.session_string_for(a),
            }
            for a in accounts
        ],
        "people": [{"username": name} for name in people],
    }
    await _register(url, secret_key, manifest)
    await _subscribe(url, secret_key, manifest)
    return Stage(url, secret_key, sandbox, accounts, people, work)


async def failover(stage: Stage, grace: float) -> dict[str, Any]:
    """kill -9 of host A's process group; B takes every tracker over."""
    host_a = stage.start_host(f"failover_{grace:g}_a", grace)
    await stage.wait_enrolled()
    host_b = stage.start_host(f"failover_{grace:g}_b", grace)
    await asyncio.sleep(5.0)  # B is up and finds every lock held
    stage.start_flipping()
    await asyncio.sleep(12.0)  # A heartbeats and records flips for a while
    killed = time.time()
    os.killpg(host_a.pid, signal.SIGKILL)
    resynced: list[float] = []
    deadline = time.monotonic() + grace + 90.0
    while time.monotonic() < deadline:
        times = [stage.resynced_after(a, killed) for a in stage.accounts]
        if all(t is not None for t in times):
            resynced = [t - killed for t in times if t is not None]
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(15.0)  # B records flips
    await stage.stop()
    rows = await stage.rows()
    assert host_b.poll() is not None
    if not resynced:
        raise SystemExit("host B did not take every tracker over")
    watched_again = killed + max(resynced) + 1.0
    blind = [f for f in stage.flips if killed <= f.at < watched_again]
    return {
        "grace_s": grace,
        "trackers": len(stage.accounts),
        "kill_to_resynced_on_b_s": sorted(round(t, 2) for t in resynced),
        "flips_while_no_host_watched": len(blind),
        "of_those_lost": len(lost(blind, rows)),
        "flips_before_kill_lost": len(lost([f for f in stage.flips if f.at < killed - MATCH_WITHIN], rows)),
        "flips_after_b_resynced_lost": len(lost([f for f in stage.flips if f.at >= watched_again], rows)),
    }


async def worker_kill(stage: Stage) -> dict[str, Any]:
    """kill -9 of each tracker's worker once: time until its replacement answered a resync."""
    import psutil  # noqa: PLC0415

    host = stage.start_host("worker_kill", DEFAULT_GRACE)
    await stage.wait_enrolled()
    await asyncio.sleep(3.0)
    connection = await asyncpg.connect(stage.url)
    samples = []
    try:
        for account in stage.accounts:
            tracker_id = await connection.fetchval("SELECT id FROM tracker_accounts WHERE telegram_id = $1", account.id)
            title = f"seeonline worker tracker={tracker_id}"
            [worker] = [
                p
                for p in psutil.Process(host.pid).children(recursive=True)
                if " ".join(p.cmdline()).strip().startswith(title)
            ]
            killed = time.time()
            worker.kill()
            while (resynced := stage.resynced_after(account, killed)) is None:
                if time.time() - killed > 60:
                    raise SystemExit(f"tracker {tracker_id} did not resync after kill -9")
                await asyncio.sleep(0.02)
            samples.append(resynced - killed)
    finally:
        await connection.close()
    await stage.stop()
    return {"kills": len(samples), "kill_to_replacement_resynced_s": sorted(round(s, 3) for s in samples)}


async def telegram_outage(stage: Stage, outage: float) -> dict[str, Any]:
    """Telegram unreachable for ``outage`` s while people flip."""
    stage.start_host("telegram", DEFAULT_GRACE)
    await stage.wait_enrolled()
    stage.start_flipping()
    await asyncio.sleep(30.0)
    began = time.time()
    await stage.sandbox.go_offline()
    await asyncio.sleep(outage)
    await stage.sandbox.go_online()
    ended = time.time()
    back = [stage.resynced_after(a, ended) for a in stage.accounts]
    while any(t is None for t in back):
        await asyncio.sleep(0.1)
        back = [stage.resynced_after(a, ended) for a in stage.accounts]
    await asyncio.sleep(30.0)
    await stage.stop()
    rows = await stage.rows()
    reconnected = max(t for t in back if t is not None)
    inside = [f for f in stage.flips if began <= f.at < ended]
    gap = [f for f in stage.flips if ended <= f.at < reconnected]
    outside = [f for f in stage.flips if f.at < began - MATCH_WITHIN or f.at > reconnected + MATCH_WITHIN]
    lost_inside = lost(inside, rows)
    return {
        "outage_s": outage,
        "people": len(stage.people),
        "flips_during_outage": len(inside),
        "lost_during_outage": len(lost_inside),
        "lost_per_minute_of_outage": round(len(lost_inside) * 60.0 / outage, 1),
        "back_to_resynced_s": round(reconnected - ended, 2),
        "flips_between_back_and_resynced": len(gap),
        "lost_between_back_and_resynced": len(lost(gap, rows)),
        "flips_outside": len(outside),
        "lost_outside": len(lost(outside, rows)),
        "inexact_rows_inside_outage": sum(1 for r in rows if r["source"] == "resync" and began <= r["at"] < ended),
    }


async def postgres_outage(stage: Stage, server: EmbeddedPostgres, outages: list[float]) -> dict[str, Any]:
    """Postgres stopped for each duration in turn while people flip (default grace)."""
    stage.start_host("postgres", DEFAULT_GRACE)
    await stage.wait_enrolled()
    stage.start_flipping()
    await asyncio.sleep(15.0)
    windows = []
    for outage in outages:
        began = time.time()
        await asyncio.to_thread(server.stop)
        await asyncio.sleep(max(outage - (time.time() - began), 0.0))
        await asyncio.to_thread(server.start)
        ended = time.time()
        windows.append((outage, began, ended))
        await asyncio.sleep(30.0)  # re-taken (or reconnected and resynced), buffers flushed
    await stage.stop()
    rows = await stage.rows()
    results = []
    for outage, began, ended in windows:
        inside = [f for f in stage.flips if began <= f.at < ended + 20.0]
        results.append(
            {
                "outage_s": round(ended - began, 1),
                "asked_s": outage,
                "flips_during_and_20s_after": len(inside),
                "lost": len(lost(inside, rows)),
            }
        )
    return {"grace_s": DEFAULT_GRACE, "outages": results, "lost_in_total": len(lost(stage.flips, rows))}


async def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Each scenario on a fresh database, sandbox and hosts."""
    server = EmbeddedPostgres(work / "pg", durable=False)
    server.start()
    report: dict[str, Any] = {}
    try:
        for scenario in args.scenarios.split(","):
            url = await _create_database(server.url("postgres"))
            await asyncio.to_thread(migrations.upgrade, url)
            async with SandboxServer(World()) as sandbox:
                if scenario == "failover":
                    report["failover"] = []
                    for grace in [float(g) for g in args.failover_graces.split(",")]:
                        stage = await make_stage(url, work, sandbox, 3, 1)
                        report["failover"].append(await failover(stage, grace))
                        url = await _create_database(server.url("postgres"))
                        await asyncio.to_thread(migrations.upgrade, url)
                elif scenario == "worker_kill":
                    report["worker_kill"] = await worker_kill(await make_stage(url, work, sandbox, 3, 1))
                elif scenario == "telegram":
                    stage = await make_stage(url, work, sandbox, 3, 3)
                    report["telegram"] = await telegram_outage(stage, args.telegram_outage)
                elif scenario == "postgres":
                    outages = [float(x) for x in args.postgres_outages.split(",")]
                    stage = await make_stage(url, work, sandbox, 3, 2)
                    report["postgres"] = await postgres_outage(stage, server, outages)
                else:
                    raise SystemExit(f"unknown scenario {scenario!r}")
            print(json.dumps({scenario: report[scenario]}), flush=True)
    finally:
        server.stop()
    return report


def main() -> None:
    """Parse options, run the scenarios, print a JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default="failover,worker_kill,telegram,postgres")
    parser.add_argument(
        "--failover-graces", default=f"{DEFAULT_GRACE:g},5", help="SEEONLINE_LEASE_GRACE of each failover run"
    )
    parser.add_argument("--telegram-outage", type=float, default=60.0)
    parser.add_argument("--postgres-outages", default="30,60,68,80", help="seconds, comma-separated")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--keep-logs", type=Path, default=None, help="copy the hosts' logs here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="seeonline-faults-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        try:
            report = asyncio.run(run(args, work))
        finally:
            if args.keep_logs is not None:
                args.keep_logs.mkdir(parents=True, exist_ok=True)
                for log in work.glob("*.log"):
                    (args.keep_logs / log.name).write_bytes(log.read_bytes())
    print(json.dumps(report, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""``seeonline supervisor`` as real processes: kill -9 leaves no orphans, two supervisors share trackers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import psutil
import pytest

from tests.polling import wait_until
from tests.supervisor.helpers import alive, events_of, make_tracker, read_events

ROOT = Path(__file__).resolve().parents[2]


class SupervisorProcesses:
    """Starts ``seeonline supervisor`` subprocesses with the fake worker and cleans up after them."""

    def __init__(self, database_url: str, control: Path) -> None:
        self.database_url = database_url
        self.control = control
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str) -> subprocess.Popen[bytes]:
        """A supervisor whose log goes to ``<control>/<name>.log``."""
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "FAKE_WORKER_DIR": str(self.control),
            "PYTHONPATH": str(ROOT),
            "SEEONLINE_RECONCILE_INTERVAL": "2",
            "SEEONLINE_LOG_JSON": "true",
        }
        command = [
            sys.executable,
            "-m",
            "seeonline",
            "supervisor",
            "--worker-target",
            "tests.supervisor.fake_worker:run",
        ]
        command += ["--start-seconds", "0.5", "--stop-grace", "2"]
        with (self.control / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        self.started.append(process)
        return process

    def cleanup(self) -> None:
        """Kill whatever is left, descendants included."""
        for process in self.started:
            with contextlib.suppress(psutil.NoSuchProcess):
                for child in psutil.Process(process.pid).children(recursive=True):
                    child.kill()
            process.kill()
            process.wait()


@pytest.fixture
def supervisors(database_url: str, tmp_path: Path) -> Iterator[SupervisorProcesses]:
    """A factory of supervisor subprocesses."""
    manager = SupervisorProcesses(database_url, tmp_path)
    yield manager
    manager.cleanup()


def descendants(pid: int) -> list[psutil.Process]:
    """Every live descendant of ``pid``."""
    try:
        children: list[psutil.Process] = psutil.Process(pid).children(recursive=True)
        return children
    except psutil.NoSuchProcess:
        return []


def holders(control: Path) -> dict[int, set[int]]:
    """Per tracker, the live fake workers that took its lock and did not report a stop."""
    events = read_events(control)
    stopped = {e.pid for e in events if e.kind == "stopped"}
    result: dict[int, set[int]] = {}
    for e in events:
        if e.kind == "acquired" and e.pid not in stopped and alive(e.pid):
            result.setdefault(e.tracker, set()).add(e.pid)
    return result


async def test_kill_9_of_the_supervisor_leaves_no_orphans_and_a_restart_resumes(
    supervisors: SupervisorProcesses, db: asyncpg.Connection[Any]
) -> None:
    trackers = [await make_tracker(db) for _ in range(3)]
    (supervisors.control / f"mode.{trackers[2]}").write_text("ignore_term")
    first = supervisors.start("first")
    await wait_until(lambda: all(events_of(supervisors.control, "acquired", t) for t in trackers), what="3 workers")
    family = descendants(first.pid)
    assert len(family) >= 4, family  # the forkserver and three workers
    workers = {e.pid for e in read_events(supervisors.control) if e.kind == "acquired"}
    assert workers <= {p.pid for p in family}

    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    await wait_until(lambda: not any(alive(p.pid) for p in family), timeout=30, what="no orphans")
    # The polite workers got SIGTERM (parent-death signal) and stopped cleanly; the stubborn one was killed.
    assert {e.tracker for e in read_events(supervisors.control) if e.kind == "stopped"} == set(trackers[:2])

    (supervisors.control / f"mode.{trackers[2]}").write_text("run")
    second = supervisors.start("second")
    await wait_until(lambda: all(len(events_of(supervisors.control, "acquired", t)) == 2 for t in trackers))
    second.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(second.wait, 30) == 0
    assert not descendants(second.pid)


async def test_two_supervisors_never_run_a_tracker_twice_and_fail_over(
    supervisors: SupervisorProcesses, db: asyncpg.Connection[Any]
) -> None:
    trackers = [await make_tracker(db) for _ in range(4)]
    violations: list[dict[int, set[int]]] = []
    watching = True

    async def watch() -> None:
        while watching:
            current = holders(supervisors.control)
            if any(len(pids) > 1 for pids in current.values()):
                violations.append(current)
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch())
    try:
        a = supervisors.start("a")
        await wait_until(lambda: set(holders(supervisors.control)) == set(trackers), what="a runs all four")
        b = supervisors.start("b")
        # b starts, reconciles, finds every lock held: its workers never take one.
        await wait_until(lambda: (supervisors.control / "b.log").read_text().count("tracker_locked_elsewhere") >= 4)
        a_workers = {p.pid for p in descendants(a.pid)}
        assert all(pids <= a_workers for pids in holders(supervisors.control).values())

        os.kill(a.pid, signal.SIGKILL)
        a.wait()

        def b_runs_all() -> bool:
            b_workers = {p.pid for p in descendants(b.pid)}
            current = holders(supervisors.control)
            return set(current) == set(trackers) and all(pids <= b_workers for pids in current.values())

        await wait_until(b_runs_all, timeout=30, what="failover to b")
        b.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(b.wait, 30) == 0
    finally:
        watching = False
        await watcher
    assert violations == []
    assert holders(supervisors.control) == {}


async def test_ps_names_the_supervisor_and_each_worker_by_its_tracker(
    supervisors: SupervisorProcesses, db: asyncpg.Connection[Any]
) -> None:
    trackers = [await make_tracker(db) for _ in range(2)]
    supervisor = supervisors.start("titled")
    await wait_until(lambda: all(events_of(supervisors.control, "acquired", t) for t in trackers), what="2 workers")
    titles = {" ".join(p.cmdline()).strip() for p in [psutil.Process(supervisor.pid), *descendants(supervisor.pid)]}
    assert "seeonline supervisor" in titles
    assert "seeonline supervisor forkserver" in titles
    assert {f"seeonline worker tracker={t}" for t in trackers} <= titles

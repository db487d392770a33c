"""Fixtures for worker tests: an in-process sandbox, trackers whose sessions point at it, workers to run."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

import asyncpg
import msgspec
import pytest

from seeonline.lease import Lease
from seeonline.sandbox import Account, SandboxServer
from seeonline.settings import Settings
from seeonline_supervisor.worker.options import WorkerOptions
from seeonline_supervisor.worker.tracker import TrackerWorker
from tests.support.keys import SECRET_KEY
from tests.worker import builders

Connection: TypeAlias = "asyncpg.Connection[Any]"

logging.getLogger("telethon").setLevel(logging.ERROR)

# Short timings so the tests do not wait on production spacing.
FAST = WorkerOptions(
    resync_interval=30.0,
    resolve_interval=0.05,
    contact_interval=0.0,
    retire_grace=0.2,
    flush_timeout=10.0,
    reconnect_max=0.5,
    lock_probe_interval=0.5,
    lock_probe_timeout=2.0,
    call_retry_base=1.0,
    reconcile_interval=2.0,
    ingest_linger=0.002,
    call_timeout=3.0,
    resync_retry_max=1.0,
    unreachable_after=1.0,
    resync_stuck_after=1.5,
    writer_failing_after=0.5,
)
FAST_LEASE = Lease(grace=1.5, heartbeat_interval=0.5)


@dataclass
class SandboxTracker:
    """A sandbox account and the tracker row whose encrypted session logs in as it."""

    account: Account
    tracker_id: int


TrackerFactory = Callable[..., Awaitable[SandboxTracker]]


@pytest.fixture
def make_tracker(sandbox: SandboxServer, db: Connection) -> TrackerFactory:
    """Create a sandbox account plus its usable tracker row: ``await make_tracker(max_users=..., privacy=...)``."""

    async def make(*, max_users: int = 100, privacy: str = "everybody", health: str | None = "ok") -> SandboxTracker:
        account = sandbox.world.add_account(privacy=privacy)
        tracker_id = await builders.tracker(
            db,
            SECRET_KEY,
            telegram_id=account.id,
            api_id=account.api_id,
            api_hash=account.api_hash,
            session=sandbox.session_string_for(account),
            max_users=max_users,
            health=health,
        )
        return SandboxTracker(account, tracker_id)

    return make


@dataclass
class RunningWorker:
    """A worker running as a task on the test's loop."""

    worker: TrackerWorker
    task: asyncio.Task[int]

    async def exit_code(self, within: float = 30.0) -> int:
        """Wait for the worker to end by itself and return its exit code."""
        return await asyncio.wait_for(asyncio.shield(self.task), within)


WorkerRunner = Callable[..., contextlib.AbstractAsyncContextManager[RunningWorker]]


@pytest.fixture
def run_worker_in_process(settings: Settings) -> WorkerRunner:
    """``async with run_worker_in_process(tracker_id) as worker``: a worker task on this loop, stopped on exit."""

    @contextlib.asynccontextmanager
    async def run(
        tracker_id: int, options: WorkerOptions = FAST, lease: Lease = FAST_LEASE
    ) -> AsyncIterator[RunningWorker]:
        worker = TrackerWorker(tracker_id, msgspec.structs.replace(settings, lease=lease), options)
        task = asyncio.get_running_loop().create_task(worker.run())
        try:
            yield RunningWorker(worker, task)
        finally:
            worker.request_stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 30)

    return run
